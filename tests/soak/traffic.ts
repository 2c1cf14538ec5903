// The soak's clients: real curl processes (HTTP/1.1 and h2, small pages, large downloads checked by SHA-256,
// uploads checked by the upstream's hash) and raw TLS connections for a WebSocket and a server-sent event
// stream that stay open for the whole run. Every outcome is recorded with its time, host and what went wrong,
// so the run can tell failures an edit or a restarted upstream explains from those nothing explains.

import { createHash } from "node:crypto";
import { expectedSha256 } from "../upstreams.ts";
import { maskedTextFrame, upgradeRequest } from "../websocket_frames.ts";

/** One request's or stream's outcome. */
export interface Outcome {
  kind: "get" | "download" | "upload" | "websocket" | "sse";
  host: string;
  /** Date.now() when it started and ended, ms. */
  started: number;
  ended: number;
  /** HTTP status, 0 when there was none (TLS failure, connection error). */
  status: number;
  /** Why it failed, or null when it did what it should. */
  error: string | null;
}

/** Where clients connect and how they verify TLS. */
export interface Target {
  port: number;
  /** Pebble's issuing root: every handshake is verified, so an expired certificate is a failure. */
  rootPemFile: string;
}

/** Runs curl for `host`, resolving it to 127.0.0.1; resolves with the exit code, status and body. */
async function curl(
  target: Target,
  host: string,
  path: string,
  args: string[],
): Promise<{ code: number; status: number; body: Uint8Array; stderr: string }> {
  const output = await new Deno.Command("curl", {
    args: [
      "-sS",
      "--max-time",
      "30",
      "--cacert",
      target.rootPemFile,
      "--resolve",
      `${host}:${target.port}:127.0.0.1`,
      "-w",
      "\n%{http_code}",
      ...args,
      `https://${host}:${target.port}${path}`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = output.stdout;
  const newline = out.lastIndexOf(0x0a);
  return {
    code: output.code,
    status: Number(new TextDecoder().decode(out.subarray(newline + 1))),
    body: out.subarray(0, Math.max(0, newline)),
    stderr: new TextDecoder().decode(output.stderr).trim(),
  };
}

/** A small GET over HTTP/1.1 or h2; the echo upstream answers with JSON naming the path it saw. */
export async function smallGet(target: Target, host: string, http2: boolean): Promise<Outcome> {
  const started = Date.now();
  const res = await curl(target, host, `/soak?t=${Date.now()}`, [http2 ? "--http2" : "--http1.1"]);
  let error: string | null = null;
  if (res.code !== 0) error = `curl ${res.code}: ${res.stderr}`;
  else if (res.status !== 200) error = `status ${res.status}`;
  return { kind: "get", host, started, ended: Date.now(), status: res.status, error };
}

/** Downloads `mib` MiB and checks its SHA-256 against what the upstream sent. */
export async function download(target: Target, host: string, mib: number): Promise<Outcome> {
  const started = Date.now();
  const res = await curl(target, host, `/big?mib=${mib}`, ["--http2"]);
  let error: string | null = null;
  if (res.code !== 0) error = `curl ${res.code}: ${res.stderr}`;
  else if (res.status !== 200) error = `status ${res.status}`;
  else if (createHash("sha256").update(res.body).digest("hex") !== expectedSha256(mib)) {
    error = `body of ${res.body.length} bytes does not match`;
  }
  return { kind: "download", host, started, ended: Date.now(), status: res.status, error };
}

/** Uploads `bytes` random bytes (chunked, HTTP/1.1) and checks the upstream's hash of what arrived. */
export async function upload(target: Target, host: string, bytes: number, dir: string): Promise<Outcome> {
  const started = Date.now();
  const body = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i += 65536) crypto.getRandomValues(body.subarray(i, i + 65536));
  const file = await Deno.makeTempFile({ dir, suffix: ".upload" });
  await Deno.writeFile(file, body);
  try {
    const res = await curl(target, host, "/upload", [
      "--http1.1",
      "-T",
      file,
      "-H",
      "Transfer-Encoding: chunked",
    ]);
    let error: string | null = null;
    if (res.code !== 0) error = `curl ${res.code}: ${res.stderr}`;
    else if (res.status !== 200) error = `status ${res.status}`;
    else {
      const sent = createHash("sha256").update(body).digest("hex");
      const seen = JSON.parse(new TextDecoder().decode(res.body)) as { sha256: string; length: number };
      if (seen.sha256 !== sent) error = `upstream received ${seen.length} bytes that do not match`;
    }
    return { kind: "upload", host, started, ended: Date.now(), status: res.status, error };
  } finally {
    await Deno.remove(file);
  }
}

/** A TLS connection to nexo for `host` (SNI), verified against the root, speaking HTTP/1.1. */
async function connect(target: Target, host: string): Promise<Deno.TlsConn> {
  // deno-lint-ignore no-explicit-any
  const internals = (Deno as any)[(Deno as any).internal];
  return await Deno.connectTls({
    hostname: "127.0.0.1",
    port: target.port,
    caCerts: [await Deno.readTextFile(target.rootPemFile)],
    alpnProtocols: ["http/1.1"],
    [internals.serverNameSymbol]: host,
  } as Deno.ConnectTlsOptions);
}

/** How a held connection ended: its status and why it failed (null: it did what it should). */
type Ending = [status: number, error: string | null];

/**
 * One long-lived connection for `host` as an Outcome of `kind`: connects, runs `use`, and closes, also when
 * `signal` aborts (the run is over). A failure after the abort is the abort, not an error. `openStatus` is
 * the status reported when `use` throws once the connection is up.
 */
async function heldConnection(
  target: Target,
  host: string,
  options: { kind: Outcome["kind"]; signal: AbortSignal; openStatus: number },
  use: (conn: Deno.TlsConn) => Promise<Ending>,
): Promise<Outcome> {
  const started = Date.now();
  const done = ([status, error]: Ending): Outcome => ({
    kind: options.kind,
    host,
    started,
    ended: Date.now(),
    status,
    error,
  });
  let conn: Deno.TlsConn;
  try {
    conn = await connect(target, host);
  } catch (error) {
    return done([0, `connect: ${error}`]);
  }
  const onAbort = () => conn.close();
  options.signal.addEventListener("abort", onAbort, { once: true });
  try {
    return done(await use(conn));
  } catch (error) {
    return done([options.openStatus, options.signal.aborted ? null : `${error}`]);
  } finally {
    options.signal.removeEventListener("abort", onAbort);
    try {
      conn.close();
    } catch {
      // closed by the abort
    }
  }
}

/**
 * Keeps one WebSocket open through nexo until `signal` aborts: a message every 500 ms, each echoed within
 * 5 s. Resolves with one Outcome per connection (a clean end when the signal stopped it, else what broke it).
 */
export function webSocketSession(target: Target, host: string, signal: AbortSignal): Promise<Outcome> {
  return heldConnection(target, host, { kind: "websocket", signal, openStatus: 101 }, async (conn) => {
    await conn.write(upgradeRequest(host, "/ws"));
    const buf = new Uint8Array(65536);
    let received = "";
    while (!received.includes("\r\n\r\n")) {
      const n = await conn.read(buf);
      if (n === null) return [0, "closed during the handshake"];
      received += new TextDecoder("latin1").decode(buf.subarray(0, n));
    }
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(received)?.[1] ?? 0);
    if (status !== 101) return [status, `handshake answered ${status}`];
    let pending = received.slice(received.indexOf("\r\n\r\n") + 4);
    for (let i = 0; !signal.aborted; i++) {
      const text = `ping ${i}`;
      await conn.write(maskedTextFrame(text));
      const deadline = Date.now() + 5_000;
      // Server frames are unmasked and short here: opcode byte, length byte, payload.
      while (!pending.includes(`echo: ${text}`)) {
        if (Date.now() > deadline) return [101, `no echo of "${text}" within 5 s`];
        const n = await conn.read(buf);
        if (n === null) return [101, signal.aborted ? null : `connection closed after ${i} messages`];
        pending += new TextDecoder("latin1").decode(buf.subarray(0, n));
      }
      pending = pending.slice(pending.indexOf(`echo: ${text}`) + text.length + 6);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    return [101, null];
  });
}

/**
 * Reads an event stream through nexo until `signal` aborts or the upstream ends it (`count` events, `gapMs`
 * apart); fails when an event is more than 5 s late or numbers are skipped.
 */
export function eventStream(
  target: Target,
  host: string,
  options: { count: number; gapMs: number; signal: AbortSignal },
): Promise<Outcome> {
  const { signal } = options;
  return heldConnection(target, host, { kind: "sse", signal, openStatus: 200 }, async (conn) => {
    await conn.write(new TextEncoder().encode(
      `GET /sse?n=${options.count}&gap=${options.gapMs} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
    ));
    const buf = new Uint8Array(65536);
    let text = "";
    let next = 1;
    let lastEvent = Date.now();
    while (next <= options.count) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<"late">((resolve) => timer = setTimeout(() => resolve("late"), 5_000));
      const read = await Promise.race([conn.read(buf), late]).finally(() => clearTimeout(timer));
      if (read === "late") return [200, `event ${next} more than 5 s late`];
      if (read === null) return [200, signal.aborted ? null : `stream ended after ${next - 1} events`];
      text += new TextDecoder().decode(buf.subarray(0, read));
      for (let match = /data: event (\d+) /.exec(text); match; match = /data: event (\d+) /.exec(text)) {
        if (Number(match[1]) !== next) return [200, `event ${match[1]} arrived where ${next} was due`];
        next++;
        lastEvent = Date.now();
        text = text.slice(match.index + match[0].length);
      }
      if (Date.now() - lastEvent > 5_000) return [200, `no event for 5 s after ${next - 1}`];
    }
    return [200, null];
  });
}
