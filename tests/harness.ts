// Shared helpers for end-to-end tests: run the real CLI as a subprocess with a config written to a temp
// directory, wait for its "listening" log line, read its JSON logs, and talk to it with real TLS clients
// (curl, and Deno.connectTls with an SNI name) that verify against nexo's local CA.

import type { Finding } from "../lib/doctor/report.ts";
import { DENO_LOG_FILTER, MALLOC_ENV, NO_CODE_CACHE, V8_FLAGS } from "../lib/v8_flags.ts";
import { bundledMain } from "./bundle.ts";

export interface NexoProcess {
  /** HTTPS port nexo bound (the config asks for port 0); tests that move it update this. */
  port: number;
  /** Plain-HTTP port, when the config had `http_listen`. */
  httpPort: number | null;
  /** The local CA's root certificate (issuer: internal). */
  rootCert: string;
  dir: string;
  pid: number;
  /** Every JSON log line so far, parsed. */
  logs: Array<Record<string, unknown>>;
  /** Everything nexo printed, raw, stdout and stderr. */
  output(): string;
  /** Sends SIGTERM and resolves with the exit code. */
  stop(signal?: Deno.Signal): Promise<number>;
  /** Resolves with nexo's exit code once it exits by itself (after a signal the test sent). */
  exited(): Promise<number>;
  /** Resolves with the first log line matching `predicate` (waits for it). */
  waitForLog(
    predicate: (line: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
}

/**
 * Starts `nexo server` on `configBody` (YAML without base_dir/listen: the harness adds base_dir, listen on
 * 127.0.0.1:0 and issuer: internal unless the body sets them).
 */
export async function startNexo(
  configBody: string,
  options: {
    args?: string[];
    dir?: string;
    permissions?: string[];
    /**
     * With V8's code cache on and Deno's module loader logging at debug, so that output() names every
     * module Deno loads ("... ES module: node:timers"), its own lazily loaded ones included.
     */
    moduleLog?: boolean;
  } = {},
): Promise<NexoProcess> {
  // A given `dir` (a previous run's, to test restarts) is the caller's to remove.
  const dir = options.dir ?? await Deno.makeTempDir({ prefix: "nexo-e2e-" });
  const lines = [`base_dir: ${JSON.stringify(dir)}`];
  if (!/^listen:/m.test(configBody)) lines.push(`listen: "127.0.0.1:0"`);
  if (!/^issuer:/m.test(configBody)) lines.push(`issuer: internal`);
  const configPath = `${dir}/config.yaml`;
  await Deno.writeTextFile(configPath, lines.join("\n") + "\n" + configBody);

  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      // All, unless the test gives the flags (the compiled binary's: shippedPermissionFlags()).
      ...(options.permissions ?? ["-A"]),
      // As shipped (deno task start, the compiled binary): the bundle, with the same flags, so that what the
      // tests check, memory figures included, is what runs in production.
      // Deno logs a module's name only when it reads or writes its code cache.
      ...(options.moduleLog ? [] : [NO_CODE_CACHE]),
      V8_FLAGS,
      await bundledMain(),
      "server",
      "--config",
      configPath,
      "--log-format",
      "json",
      ...(options.args ?? []),
    ],
    // As shipped (deno task start, the Dockerfile): no bare h2 lines among the JSON logs, one malloc arena.
    env: {
      DENO_LOG: options.moduleLog ? `${DENO_LOG_FILTER},deno::module_loader=debug` : DENO_LOG_FILTER,
      ...MALLOC_ENV,
    },
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();

  const logs: Array<Record<string, unknown>> = [];
  let raw = "";
  const waiters: Array<
    { predicate: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }
  > = [];
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    let pending = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      raw += chunk;
      pending += chunk;
      let newline;
      while ((newline = pending.indexOf("\n")) !== -1) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        let parsed: Record<string, unknown>;
        try {
          parsed = JSON.parse(line);
        } catch {
          continue;
        }
        logs.push(parsed);
        for (const waiter of [...waiters]) {
          if (waiter.predicate(parsed)) {
            waiters.splice(waiters.indexOf(waiter), 1);
            waiter.resolve(parsed);
          }
        }
      }
    }
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);

  const waitForLog = (predicate: (line: Record<string, unknown>) => boolean, timeoutMs = 20_000) => {
    const found = logs.find(predicate);
    if (found) return Promise.resolve(found);
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.splice(waiters.findIndex((w) => w.resolve === done), 1);
        reject(new Error(`nexo did not log the expected line within ${timeoutMs} ms; output:\n${raw}`));
      }, timeoutMs);
      const done = (line: Record<string, unknown>) => {
        clearTimeout(timer);
        resolve(line);
      };
      waiters.push({ predicate, resolve: done });
    });
  };

  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const stop = async (signal: Deno.Signal = "SIGTERM") => {
    if (!exited) child.kill(signal);
    const { code } = await status;
    await pumps;
    if (!options.dir) await Deno.remove(dir, { recursive: true }).catch(() => {});
    return code;
  };

  let listening;
  try {
    listening = await Promise.race([
      waitForLog((l) => l.msg === "listening" && l.protocol === "https"),
      status.then((s) => Promise.reject(new Error(`nexo exited with ${s.code} before listening:\n${raw}`))),
    ]);
  } catch (error) {
    await stop("SIGKILL");
    throw error;
  }
  const httpLine = /^http_listen:/m.test(configBody)
    ? await waitForLog((l) => l.msg === "listening" && l.protocol === "http")
    : null;
  const ca = logs.find((l) => l.msg === "local CA ready");
  return {
    port: portOf(listening.addr),
    httpPort: httpLine ? portOf(httpLine.addr) : null,
    rootCert: typeof ca?.root_certificate === "string" ? ca.root_certificate : "",
    dir,
    pid: child.pid,
    logs,
    output: () => raw,
    stop,
    exited: async () => (await status).code,
    waitForLog,
  };
}

function portOf(addr: unknown): number {
  const match = /:(\d+)$/.exec(String(addr));
  if (!match) throw new Error(`cannot read a port from ${addr}`);
  return Number(match[1]);
}

export interface CurlResult {
  code: number;
  status: number;
  headers: Record<string, string>;
  body: string;
  stderr: string;
}

/**
 * Runs curl against nexo for `host` (resolved to 127.0.0.1, TLS verified against nexo's root), returning the
 * final response's status, headers (lowercased) and body. Extra curl arguments go before the URL.
 */
export async function curl(
  nexo: NexoProcess,
  host: string,
  path: string,
  args: string[] = [],
): Promise<CurlResult> {
  const url = `https://${host}:${nexo.port}${path}`;
  const output = await new Deno.Command("curl", {
    args: [
      "-sS",
      "--max-time",
      "60",
      "--cacert",
      nexo.rootCert,
      "--resolve",
      `${host}:${nexo.port}:127.0.0.1`,
      "-D",
      "-",
      ...args,
      url,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout);
  return { code: output.code, ...parseHeadAndBody(text), stderr: new TextDecoder().decode(output.stderr) };
}

function parseHeadAndBody(text: string): { status: number; headers: Record<string, string>; body: string } {
  // curl -D - prints every head (100 Continue, redirects); take the last one.
  let rest = text;
  let head = "";
  while (/^HTTP\/[\d.]+ \d{3}/.test(rest)) {
    const end = rest.indexOf("\r\n\r\n");
    if (end === -1) break;
    head = rest.slice(0, end);
    rest = rest.slice(end + 4);
  }
  const [statusLine = "", ...fields] = head.split("\r\n");
  const headers: Record<string, string> = {};
  for (const field of fields) {
    const colon = field.indexOf(":");
    if (colon > 0) {
      const name = field.slice(0, colon).toLowerCase();
      const value = field.slice(colon + 1).trim();
      headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
    }
  }
  return { status: Number(statusLine.split(" ")[1] ?? 0), headers, body: rest };
}

/** Opens a TLS connection to nexo with the given SNI name, verifying against nexo's root certificate. */
export async function connectTls(
  nexo: NexoProcess,
  serverName: string,
  alpn: string[] = ["http/1.1"],
): Promise<Deno.TlsConn> {
  // deno-lint-ignore no-explicit-any
  const serverNameSymbol = (Deno as any)[(Deno as any).internal].serverNameSymbol;
  return await Deno.connectTls({
    hostname: "127.0.0.1",
    port: nexo.port,
    caCerts: [await Deno.readTextFile(nexo.rootCert)],
    alpnProtocols: alpn,
    [serverNameSymbol]: serverName,
  } as Deno.ConnectTlsOptions);
}

/** Reads /proc/<pid>/status VmRSS of the process tree's main process, in bytes. */
export async function rssBytes(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  return match ? Number(match[1]) * 1024 : 0;
}

/** The `--allow-*` flags `deno task compile` bakes into the binary, with /etc/nexo moved to `dir`. */
export async function shippedPermissionFlags(dir: string): Promise<string[]> {
  const denoJson = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  const flags = (denoJson.tasks.compile as string).split(/\s+/).filter((arg) => arg.startsWith("--allow-"));
  return flags.map((flag) => flag.replaceAll("/etc/nexo", dir));
}

/** What one `nexo doctor --json` run printed. */
export interface DoctorRun {
  code: number;
  findings: Finding[];
  stdout: string;
  stderr: string;
}

/** Runs `nexo doctor --json` on `config` (YAML) written to `dir`, with `flags` (default -A). */
export async function runDoctor(
  dir: string,
  config: string,
  options: { args?: string[]; flags?: string[] } = {},
): Promise<DoctorRun> {
  await Deno.writeTextFile(`${dir}/config.yaml`, config);
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...(options.flags ?? ["-A"]),
      await bundledMain(),
      "doctor",
      "--config",
      `${dir}/config.yaml`,
      "--json",
      ...(options.args ?? []),
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  const stderr = new TextDecoder().decode(output.stderr);
  let findings: Finding[];
  try {
    findings = JSON.parse(stdout).findings;
  } catch {
    throw new Error(`doctor printed no JSON (exit ${output.code}):\n${stdout}\n${stderr}`);
  }
  return { code: output.code, findings, stdout, stderr };
}
