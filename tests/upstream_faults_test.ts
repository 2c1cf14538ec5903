// End-to-end: nexo in front of upstreams that fail the ways real ones do (down, refusing, resetting,
// stalling, answering garbage or oversized heads, dying mid-body), seen by curl over HTTP/1.1 and HTTP/2.
// Checks the status nexo answers with, that a cut body never reaches the client looking complete, that the
// keep-alive pool recovers from closed connections, and that thousands of failures leave no memory, file
// descriptors or upstream sockets behind.

import assert from "node:assert/strict";
import { type FaultyUpstream, gates, type Peer, startFaultyUpstream } from "./faulty_upstream.ts";
import { curl, type NexoProcess, rssBytes, startNexo } from "./harness.ts";
import { closedPort } from "./upstreams.ts";

const KIB = 1024;
/** Over nexo's 64 KiB buffering threshold (lib/proxy/body.ts), so the body is streamed and can be cut. */
const STREAMED_LENGTH = 256 * KIB;
const FILLER = "a".repeat(STREAMED_LENGTH);

/** A head declaring a 256 KiB body (Content-Length) and the first 100 KiB of it. */
function headAndPartialBody(): string {
  return `HTTP/1.1 200 OK\r\ncontent-length: ${STREAMED_LENGTH}\r\n\r\n${FILLER.slice(0, 100 * KIB)}`;
}

/** A chunked head, one complete 70 KiB chunk, then nothing (cut between chunks) or 100 B of a 4 KiB one. */
function chunkedUntilCut(cut: "mid-chunk" | "between chunks"): string {
  const first = `11800\r\n${FILLER.slice(0, 0x11800)}\r\n`;
  return `HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n${first}` +
    (cut === "mid-chunk" ? `1000\r\n${FILLER.slice(0, 100)}` : "");
}

// ---------------------------------------------------------------------------------------------------------
// Clients

interface StreamedCurl {
  /** curl's exit code: 18 (h1 body short of its length), 92 (h2 stream reset), 28 (timed out)... */
  code: number;
  status: number;
  bodyBytes: number;
  stderr: string;
}

/**
 * Runs curl with unbuffered output (-N) and calls `onBody` once the response head and at least one body byte
 * arrived, so a test breaks the upstream while a response is in flight to the client, not before.
 */
async function curlMidBody(
  nexo: NexoProcess,
  host: string,
  args: string[],
  onBody: () => void,
): Promise<StreamedCurl> {
  const child = new Deno.Command("curl", {
    args: [
      "-sS",
      "-N",
      "--cacert",
      nexo.rootCert,
      "--resolve",
      `${host}:${nexo.port}:127.0.0.1`,
      "-D",
      "-",
      ...args,
      `https://${host}:${nexo.port}/`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  let text = "";
  let called = false;
  for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream("latin1"))) {
    text += chunk;
    const end = text.indexOf("\r\n\r\n");
    if (!called && end !== -1 && text.length > end + 4) {
      called = true;
      onBody();
    }
  }
  const { code } = await child.status;
  const end = text.indexOf("\r\n\r\n");
  return {
    code,
    status: Number(/^HTTP\/[\d.]+ (\d{3})/.exec(text)?.[1] ?? 0),
    bodyBytes: end === -1 ? 0 : text.length - end - 4,
    stderr: await stderr,
  };
}

/** nexo's open file descriptors (sockets, pipes, files). */
async function openFds(pid: number): Promise<number> {
  let count = 0;
  for await (const _ of Deno.readDir(`/proc/${pid}/fd`)) count++;
  return count;
}

const MIB = 1024 * 1024;

function mib(bytes: number): string {
  return `${(bytes / MIB).toFixed(1)} MiB`;
}

const VERSIONS = ["--http1.1", "--http2"] as const;
/** curl's exit code for a transfer cut short, per protocol: 18 partial file (h1), 92 stream error (h2). */
const CUT_SHORT = { "--http1.1": 18, "--http2": 92 } as const;

// ---------------------------------------------------------------------------------------------------------

/** A proxy route with a 1 s response-head timeout (the route's `timeout`), short enough for a 504 test. */
function route(host: string, upstream: string): string {
  return `  "${host}":\n    upstream: ${upstream}\n    timeout: 1s\n`;
}

Deno.test("nexo answers every kind of upstream failure with 502/504 or an aborted response", async (t) => {
  const rstGates = gates(VERSIONS.length);
  const cutGates = { "mid-chunk": gates(VERSIONS.length), "between chunks": gates(VERSIONS.length) };
  const upstreams: Record<string, FaultyUpstream> = {
    // Accepts, then closes without reading or answering.
    "hangup.test": await startFaultyUpstream((peer) => peer.end()),
    // Reads the request, then resets.
    "reset.test": await startFaultyUpstream(async (peer) => {
      await peer.nextRequest();
      peer.reset();
    }),
    // Never answers, and keeps the connection open until nexo gives up on it.
    "silent.test": await startFaultyUpstream(async (peer) => {
      await peer.nextRequest();
      await peer.closed;
    }),
    // An SMTP server's greeting: a line, but no blank line ever, so only the first bytes can tell.
    "smtp.test": await startFaultyUpstream(async (peer) => {
      await peer.write("220 mail.example.com ESMTP ready\r\n");
      await peer.closed;
    }),
    // Binary garbage, as an HTTP/2-only (h2c) server's SETTINGS frame would be.
    "binary.test": await startFaultyUpstream(async (peer) => {
      await peer.nextRequest();
      await peer.write(new Uint8Array([0, 0, 18, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100, 0, 4, 0]));
      await peer.closed;
    }),
    // A 100 KiB response head, over the upstream client's 64 KiB limit; it then keeps the connection open.
    "hugehead.test": await startFaultyUpstream(async (peer) => {
      await peer.nextRequest();
      await peer.write(
        `HTTP/1.1 200 OK\r\nx-big: ${FILLER.slice(0, 100 * KIB)}\r\ncontent-length: 2\r\n\r\nok`,
      );
      await peer.closed;
    }),
    // A 32 KiB head: under the limit, to show the limit (not the size as such) is what rejected the other.
    "bighead.test": await startFaultyUpstream(async (peer) => {
      await peer.nextRequest();
      await peer.write(
        `HTTP/1.1 200 OK\r\nx-big: ${FILLER.slice(0, 32 * KIB)}\r\ncontent-length: 2\r\n\r\nok`,
      );
      peer.end();
    }),
    // Head and 100 KiB of a 256 KiB body, then RST once the client saw the body start.
    "rst.test": await startFaultyUpstream(async (peer, index) => {
      await peer.nextRequest();
      await peer.write(headAndPartialBody());
      await rstGates.opened(index);
      peer.reset();
    }),
    // Head and part of the body, then silence with the connection kept open.
    "stall.test": await startFaultyUpstream(async (peer) => {
      await peer.nextRequest();
      await peer.write(headAndPartialBody());
      await peer.closed;
    }),
    // A small Content-Length body (nexo buffers those whole) that stalls after 3 of 1000 bytes.
    "stallsmall.test": await startFaultyUpstream(async (peer) => {
      await peer.nextRequest();
      await peer.write("HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\nabc");
      await peer.closed;
    }),
  };
  for (const cut of ["mid-chunk", "between chunks"] as const) {
    // FIN, not RST: the subtle case, where a careless proxy takes the end of the connection for the end of
    // the body and sends the last chunk itself.
    upstreams[`${cut.replace(" ", "-")}.test`] = await startFaultyUpstream(async (peer, index) => {
      await peer.nextRequest();
      await peer.write(chunkedUntilCut(cut));
      await cutGates[cut].opened(index);
      peer.end();
    });
  }
  // The same stalling upstreams behind routes whose body_timeout is short enough to see it act.
  const cutAfter1s = (host: string, upstream: string) => route(host, upstream) + "    body_timeout: 1s\n";
  const nexo = await startNexo(
    "proxies:\n" + route("down.test", `http://127.0.0.1:${closedPort()}`) +
      Object.entries(upstreams).map(([host, upstream]) => route(host, upstream.url)).join("") +
      cutAfter1s("stallcut.test", upstreams["stall.test"]!.url) +
      cutAfter1s("stallcutsmall.test", upstreams["stallsmall.test"]!.url),
  );
  const upstream = (host: string) => upstreams[host]!;
  const errorPage = (status: number) => new RegExp(`<title>${status} [^<]+</title>[\\s\\S]*<p>nexo</p>`);
  try {
    await t.step("an upstream that is down, hangs up or resets before answering gives 502", async () => {
      for (const host of ["down.test", "hangup.test", "reset.test"]) {
        for (const version of VERSIONS) {
          const res = await curl(nexo, host, "/", [version]);
          assert.equal(res.status, 502, `${host} ${version}: ${res.stderr}`);
          assert.match(res.body, errorPage(502));
          assert.doesNotMatch(res.body, /127\.0\.0\.1/, "the page does not leak the upstream address");
        }
      }
      await upstream("hangup.test").waitForOpenAtMost(0, 5_000);
    });

    await t.step(
      "an upstream that never answers gives 504 after the route's timeout, then is let go",
      async () => {
        const started = performance.now();
        const res = await curl(nexo, "silent.test", "/");
        const elapsed = performance.now() - started;
        assert.equal(res.status, 504);
        assert.match(res.body, errorPage(504));
        assert.ok(elapsed >= 950, `504 after ${elapsed.toFixed(0)} ms, before the 1 s timeout`);
        assert.ok(elapsed < 10_000, `504 only after ${elapsed.toFixed(0)} ms`);
        await upstream("silent.test").waitForOpenAtMost(0, 5_000);
      },
    );

    await t.step("a non-HTTP answer gives 502 at once, not 504 after the timeout", async () => {
      for (const host of ["smtp.test", "binary.test"]) {
        const started = performance.now();
        const res = await curl(nexo, host, "/");
        assert.equal(res.status, 502, `${host}: ${res.status}`);
        assert.match(res.body, errorPage(502));
        // Inside the route's 1 s timeout: nexo rejected the first bytes instead of waiting for a blank line.
        const elapsed = performance.now() - started;
        assert.ok(elapsed < 900, `${host} took ${elapsed.toFixed(0)} ms`);
        await upstream(host).waitForOpenAtMost(0, 5_000);
      }
    });

    await t.step("a response head over the 64 KiB limit gives 502; a 32 KiB one passes", async () => {
      const huge = await curl(nexo, "hugehead.test", "/");
      assert.equal(huge.status, 502);
      assert.match(huge.body, errorPage(502));
      await upstream("hugehead.test").waitForOpenAtMost(0, 5_000);
      const big = await curl(nexo, "bighead.test", "/");
      assert.equal(big.status, 200, big.stderr);
      assert.equal(big.headers["x-big"]?.length, 32 * KIB);
    });

    await t.step("a body reset mid-way reaches the client aborted, never complete-looking", async () => {
      for (const [index, version] of VERSIONS.entries()) {
        const res = await curlMidBody(nexo, "rst.test", [version], () => rstGates.open(index));
        assert.equal(res.status, 200, res.stderr);
        assert.equal(res.code, CUT_SHORT[version], `${version}: curl exit ${res.code}: ${res.stderr}`);
        assert.ok(res.bodyBytes < STREAMED_LENGTH, `${res.bodyBytes} bytes`);
      }
      await nexo.waitForLog((l) =>
        l.msg === "request" && l.host === "rst.test" && /stream ended early/.test(String(l.error))
      );
      // Logged once, with the request: an upstream cutting a body short is no crash of nexo's handler.
      assert.deepEqual(nexo.logs.filter((l) => l.msg === "handler failed"), []);
    });

    await t.step("a chunked body cut mid-chunk or between chunks reaches the client aborted", async () => {
      for (const cut of ["mid-chunk", "between chunks"] as const) {
        for (const [index, version] of VERSIONS.entries()) {
          const host = `${cut.replace(" ", "-")}.test`;
          const res = await curlMidBody(nexo, host, [version], () => cutGates[cut].open(index));
          assert.equal(res.status, 200, `${cut} ${version}: ${res.stderr}`);
          assert.equal(
            res.code,
            CUT_SHORT[version],
            `${cut} ${version}: curl exit ${res.code}: ${res.stderr}`,
          );
        }
      }
      assert.deepEqual(nexo.logs.filter((l) => l.msg === "handler failed"), []);
    });

    await t.step(
      "a body stalled past the route's body_timeout: 504 when buffered, else cut off",
      async () => {
        for (const version of VERSIONS) {
          const small = await curl(nexo, "stallcutsmall.test", "/", [version, "--max-time", "10"]);
          assert.equal(small.status, 504, `${version}: ${small.stderr}`);
          assert.match(small.body, errorPage(504));
          const streamed = await curlMidBody(nexo, "stallcut.test", [version, "--max-time", "10"], () => {});
          assert.notEqual(streamed.code, 28, `${version}: nexo did not cut the body before curl gave up`);
          assert.ok(streamed.code === 18 || streamed.code === 92, `${version}: curl exit ${streamed.code}`);
          assert.ok(streamed.status === 200 && streamed.bodyBytes < STREAMED_LENGTH);
        }
        await upstream("stall.test").waitForOpenAtMost(0, 5_000);
        await upstream("stallsmall.test").waitForOpenAtMost(0, 5_000);
      },
    );

    await t.step("a client that gives up on a stalled body frees the upstream connection", async () => {
      // The default body_timeout (5 min) is far beyond this test: the client's departure alone must release
      // the upstream socket, streamed or buffered.
      for (const host of ["stall.test", "stallsmall.test"]) {
        for (const version of VERSIONS) {
          const res = await curlMidBody(nexo, host, [version, "--max-time", "1"], () => {});
          assert.equal(res.code, 28, `${host} ${version}: curl exit ${res.code}: ${res.stderr}`);
          // Streamed: the head and part of the body, never all of it. Buffered: nothing yet.
          if (host === "stall.test") assert.ok(res.status === 200 && res.bodyBytes < STREAMED_LENGTH);
          else assert.equal(res.status, 0);
          await upstream(host).waitForOpenAtMost(0, 5_000);
        }
      }
    });
  } finally {
    await nexo.stop();
    for (const faulty of Object.values(upstreams)) await faulty.close();
  }
});

/** One transfer of a `curlMany` run. */
interface Transfer {
  host: string;
  status: number;
  /** curl's exit code for this transfer (0: complete). */
  code: number;
  bytes: number;
  /** curl's error message, "" when none. */
  error: string;
}

/**
 * Fetches every `paths` entry (host and path) with one curl process running `parallel` transfers at once
 * (HTTP/1.1 keep-alive or HTTP/2 multiplexing, per `version`): thousands of requests without thousands of
 * processes.
 */
async function curlMany(
  nexo: NexoProcess,
  targets: Array<{ host: string; path: string }>,
  options: { version: (typeof VERSIONS)[number]; parallel: number },
): Promise<Transfer[]> {
  const config = await Deno.makeTempFile({ prefix: "nexo-curl-", suffix: ".conf" });
  try {
    const lines = targets.map(({ host, path }) =>
      `url = "https://${host}:${nexo.port}${path}"\noutput = "/dev/null"\n`
    );
    await Deno.writeTextFile(config, lines.join(""));
    const hosts = new Set(targets.map((target) => target.host));
    const output = await new Deno.Command("curl", {
      args: [
        "-sS",
        options.version,
        "--parallel",
        "--parallel-max",
        String(options.parallel),
        "--max-time",
        "30",
        "--cacert",
        nexo.rootCert,
        ...[...hosts].flatMap((host) => ["--resolve", `${host}:${nexo.port}:127.0.0.1`]),
        "-w",
        "%{http_code} %{exitcode} %{size_download} %{url_effective} %{errormsg}\\n",
        "-K",
        config,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const transfers = new TextDecoder().decode(output.stdout).trim().split("\n").map((line) => {
      const [status = "", code = "", bytes = "", url = "", ...error] = line.split(" ");
      return {
        host: new URL(url).hostname,
        status: Number(status),
        code: Number(code),
        bytes: Number(bytes),
        error: error.join(" "),
      };
    });
    assert.equal(transfers.length, targets.length, new TextDecoder().decode(output.stderr).slice(0, 2000));
    return transfers;
  } finally {
    await Deno.remove(config);
  }
}

/** An upstream that answers every request on a kept-alive connection with "ok". */
function answerOk(): (peer: Peer) => Promise<void> {
  return async (peer) => {
    while ((await peer.nextRequest()) !== null) {
      await peer.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    }
  };
}

Deno.test("after an upstream closes pooled connections, next requests succeed on fresh ones", async (t) => {
  // Every request head the upstream read, with the connection it came on; `dropNextReuse` makes the next
  // request on an already used connection be met with a close instead of an answer: the keep-alive race,
  // an upstream's idle timeout firing just as nexo reuses the connection.
  const seen: Array<{ conn: number; method: string }> = [];
  let dropNextReuse = false;
  const upstream = await startFaultyUpstream(async (peer, conn) => {
    for (let n = 0;; n++) {
      const head = await peer.nextRequest();
      if (head === null) return;
      seen.push({ conn, method: head.split(" ")[0]! });
      if (n > 0 && dropNextReuse) {
        dropNextReuse = false;
        return peer.end();
      }
      await peer.write(`HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\nconn ${String(conn).padStart(3)}`);
    }
  });
  const nexo = await startNexo(`proxies:\n${route("pool.test", upstream.url)}`);
  try {
    await t.step("a GET the upstream drops on a reused connection is retried once on a new one", async () => {
      assert.equal((await curl(nexo, "pool.test", "/")).body, "conn   0");
      dropNextReuse = true;
      const retried = await curl(nexo, "pool.test", "/");
      assert.equal(retried.status, 200, retried.body);
      assert.equal(retried.body, "conn   1");
      assert.deepEqual(seen.slice(-2), [{ conn: 0, method: "GET" }, { conn: 1, method: "GET" }]);
    });

    await t.step("a POST the upstream drops gives 502 and is never sent twice", async () => {
      // RFC 9110 §9.2.2: the POST may have had its effect before the connection closed.
      dropNextReuse = true;
      const before = seen.length;
      const post = await curl(nexo, "pool.test", "/", ["--data-binary", "once"]);
      assert.equal(post.status, 502);
      assert.deepEqual(seen.slice(before), [{ conn: 1, method: "POST" }]);
      assert.equal((await curl(nexo, "pool.test", "/")).body, "conn   2");
    });

    await t.step("an upstream restart closing every pooled connection costs no request", async () => {
      const batch = Array.from({ length: 16 }, (_, i) => ({ host: "pool.test", path: `/${i}` }));
      const first = await curlMany(nexo, batch, { version: "--http2", parallel: 8 });
      assert.deepEqual(first.filter((transfer) => transfer.status !== 200), []);
      const pooled = upstream.open;
      assert.ok(pooled >= 1, "nexo kept connections to the upstream");
      const acceptedBefore = upstream.accepted;
      // No wait: some requests may take a connection whose close nexo has not read yet, and must retry.
      upstream.closeConnections();
      const after = await curlMany(nexo, batch, { version: "--http2", parallel: 8 });
      assert.deepEqual(after.filter((transfer) => transfer.status !== 200), []);
      assert.ok(upstream.accepted > acceptedBefore, "fresh connections were opened");
    });
  } finally {
    await nexo.stop();
    await upstream.close();
  }
});

Deno.test("3,010 failing requests leak no memory, file descriptors or upstream connections", async () => {
  // One upstream per failure kind, none gated: each fails as fast as it can, and with as few bytes as still
  // make the fault (the test process's own CPU is most of this test's time on a 2-core machine).
  const upstreams: Record<string, FaultyUpstream> = {
    "reset.test": await startFaultyUpstream(async (peer) => {
      await peer.nextRequest();
      peer.reset();
    }),
    // Garbage and oversized heads are answered with the connection left open: nexo must close it.
    "garbage.test": await startFaultyUpstream(async (peer) => {
      await peer.nextRequest();
      await peer.write("SSH-2.0-OpenSSH_9.6\r\n");
      await peer.closed;
    }),
    "hugehead.test": await startFaultyUpstream(async (peer) => {
      await peer.nextRequest();
      await peer.write(`HTTP/1.1 200 OK\r\nx-big: ${FILLER.slice(0, 65 * KIB)}\r\n\r\n`);
      await peer.closed;
    }),
    // Cut mid-body: RST after 4 KiB of 256 KiB, FIN inside a chunk. Whether nexo read the head before the
    // cut decides between a 502 page and an aborted response; both are right.
    "cut.test": await startFaultyUpstream(async (peer) => {
      await peer.nextRequest();
      await peer.write(
        `HTTP/1.1 200 OK\r\ncontent-length: ${STREAMED_LENGTH}\r\n\r\n${FILLER.slice(0, 4 * KIB)}`,
      );
      peer.reset();
    }),
    "chunkcut.test": await startFaultyUpstream(async (peer) => {
      await peer.nextRequest();
      await peer.write(
        `HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1000\r\n${FILLER.slice(0, 100)}`,
      );
      peer.end();
    }),
    // Healthy and kept alive, so the pool is exercised alongside the failures.
    "ok.test": await startFaultyUpstream(answerOk()),
  };
  const hosts = ["refused.test", ...Object.keys(upstreams)];
  // The admin listener's /metrics tells V8's heap apart from other memory when the RSS check fails.
  const adminPort = closedPort();
  const nexo = await startNexo(
    `admin:\n  listen: "127.0.0.1:${adminPort}"\n` +
      "proxies:\n" + route("refused.test", `http://127.0.0.1:${closedPort()}`) +
      Object.entries(upstreams).map(([host, upstream]) => route(host, upstream.url)).join(""),
  );
  /** `rounds` requests to every host, interleaved, half over HTTP/1.1 and half over HTTP/2, 32 at a time. */
  const run = async (rounds: number) => {
    const targets = Array.from({ length: rounds }, (_, i) => hosts.map((host) => ({ host, path: `/${i}` })))
      .flat();
    const half = Math.ceil(targets.length / 2);
    const results = await Promise.all([
      curlMany(nexo, targets.slice(0, half), { version: "--http1.1", parallel: 16 }),
      curlMany(nexo, targets.slice(half), { version: "--http2", parallel: 16 }),
    ]);
    for (const transfer of results.flat()) checkOutcome(transfer);
  };
  /**
   * Waits until nexo let go of every upstream connection but the healthy upstream's pool, then has that
   * upstream close its side (nexo must drop those at once too) and returns nexo's settled fd count.
   */
  const settle = async () => {
    for (const [host, upstream] of Object.entries(upstreams)) {
      if (host !== "ok.test") await upstream.waitForOpenAtMost(0, 10_000);
    }
    const ok = upstreams["ok.test"]!;
    assert.ok(ok.open >= 1 && ok.open <= 64, `${ok.open} pooled connections (the pool keeps up to 64)`);
    ok.closeConnections();
    await ok.waitForOpenAtMost(0, 5_000);
    return await steadyFds(nexo.pid);
  };
  try {
    // One handshake per name first: Deno 2.9.6's SNI resolver fails a handshake that arrives just as the
    // first lookup for its name completes (it re-subscribes to a result already broadcast), and 32 parallel
    // first handshakes hit that window now and then. Not what this test is about.
    for (const host of hosts) {
      const first = await curl(nexo, host, "/first");
      checkOutcome({ host, ...first, bytes: first.body.length, error: first.stderr.trim() });
    }
    // Warm-up: the same mix at the same concurrency, so the baseline includes what serving it takes (JIT
    // code, V8's young generation grown for the allocation rate, allocator arenas for 32 connections).
    await run(150);
    const fdsBefore = await settle();
    const rssBefore = await rssBytes(nexo.pid);
    await run(430);
    const fdsAfter = await settle();
    assert.deepEqual(nexo.logs.filter((l) => l.msg === "handler failed"), []);
    // A leaked socket per failure would add hundreds; a few may be mid-close.
    assert.ok(fdsAfter <= fdsBefore + 4, `nexo had ${fdsBefore} fds before and ${fdsAfter} after`);
    // 16 MiB over 3,010 requests is ~5 KiB each. Tried: keeping every connection's 16 KiB read buffer
    // alive (2,150 failed connections, 34 MiB) ended 30 MiB up and failed here. But V8 keeps the young
    // generation it grew under load (semi-spaces up to 16 MiB each) until its memory reducer runs, which
    // waits for a low allocation rate on an 8 s tick: measured, RSS was 17 to 38 MiB up right after the
    // burst and -6 to +10 MiB once reduced, 8 to 28 s later (26 s when the machine is otherwise idle). So the
    // check waits for that rather than comparing at once; leaked memory is never given back, so a leak
    // still fails, after 40 s.
    const growth = await waitForRssGrowthBelow(nexo.pid, rssBefore, {
      maxGrowth: 16 * MIB,
      timeoutMs: 40_000,
    });
    if (!growth.below) {
      const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
      const memory = metrics.split("\n").filter((line) => /^(process_resident|nexo_js)/.test(line));
      assert.fail(
        `RSS did not come back within 16 MiB of ${mib(rssBefore)}: ${growth.series}\n${memory.join("\n")}`,
      );
    }
  } finally {
    await nexo.stop();
    for (const upstream of Object.values(upstreams)) await upstream.close();
  }
});

/** nexo's fd count once it held still for a second (closed sockets leave as their pending ops finish). */
async function steadyFds(pid: number): Promise<number> {
  let fds = await openFds(pid);
  const deadline = performance.now() + 10_000;
  for (let unchanged = 0; unchanged < 4 && performance.now() < deadline;) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    const now = await openFds(pid);
    unchanged = now === fds ? unchanged + 1 : 0;
    fds = now;
  }
  return fds;
}

/**
 * Polls the RSS of `pid` every 500 ms until it is less than `maxGrowth` bytes above `baseline` or
 * `timeoutMs` passed; `series` lists each change as "seconds:growth", for the failure message.
 */
async function waitForRssGrowthBelow(
  pid: number,
  baseline: number,
  options: { maxGrowth: number; timeoutMs: number },
): Promise<{ below: boolean; series: string }> {
  const started = performance.now();
  const series: string[] = [];
  let last = NaN;
  for (;;) {
    const growth = (await rssBytes(pid)) - baseline;
    if (growth !== last) series.push(`${((performance.now() - started) / 1000).toFixed(1)}s:${mib(growth)}`);
    last = growth;
    if (growth < options.maxGrowth) return { below: true, series: series.join(" ") };
    if (performance.now() - started > options.timeoutMs) return { below: false, series: series.join(" ") };
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** What each host of the leak test may answer: 502 pages, or (mid-body cuts) an aborted transfer. */
function checkOutcome(transfer: Transfer): void {
  const { host, status, code } = transfer;
  const where = `${host}: status ${status}, curl exit ${code} ${transfer.error}`;
  switch (host) {
    case "ok.test":
      assert.ok(status === 200 && code === 0 && transfer.bytes === 2, where);
      return;
    case "cut.test":
    case "chunkcut.test":
      // The RST or FIN may come before nexo read the head (502) or after (aborted); never a complete 200.
      assert.ok(code === 0 ? status === 502 : status === 200 || status === 0, where);
      return;
    default:
      assert.ok(status === 502 && code === 0, where);
  }
}
