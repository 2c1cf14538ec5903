// What one round measures on one running proxy, and how the page describes it: load runs with wrk and
// h2load (throughput, latency, CPU), memory under load, 1,000 idle keep-alive connections, and 1 GiB streamed
// each way. run.ts decides which proxy runs when; a proxy failing a scenario becomes a warning, not an error.

import { ISSUANCES } from "./acme_cost.ts";
import { withIdleConnections } from "./idle_conns.ts";
import { runCurlTransfer, runH2load, runWrk, type TransferResult } from "./load.ts";
import { readTreeCpuSeconds, readTreeRss, sampleRss } from "./process.ts";
import { addSample, type Metric, type Samples } from "./report.ts";
import {
  type BenchEnv,
  HUGE_BYTES,
  HUGE_PATH,
  LARGE_PATH,
  type ProxyName,
  type RunningServer,
  SMALL_PATH,
  UPLOAD_PATH,
} from "./servers.ts";
import { RECEIVED_HEADER } from "./upload_sink.ts";

/** 5 s load runs: long enough for a stable rate, short enough for three rounds of everything in minutes. */
export const DURATION_SEC = 5;
/** Let a freshly started server finish its lazy initialisation before its idle memory is read. */
export const SETTLE_MS = 1_000;
export const MIB = 1024 * 1024;
/**
 * 1,000 connections, the order of a small site's idle browsers, opened 100 at a time so that no proxy sees a
 * SYN flood or an overflowing accept queue; held 1 s so the proxies finish their per-connection setup.
 */
/**
 * The idle-connection scenario: read once `holdMs` after the last connection is up, and again `settledMs`
 * after: V8's memory reducer gives back the young generation the burst of requests grew some 20-30 s after
 * it (measured on nexo and the floor), which is where connections held for minutes live.
 */
const IDLE = { count: 1_000, batch: 100, holdMs: 1_000, settledMs: 40_000 };
/** How long after a load burst a server's RSS is read: V8's memory reducer acts within ~30 s of idling. */
export const AFTER_LOAD_MS = 60_000;
/** Below this many open files the idle-connection scenario cannot run (the bench holds one per conn). */
export const MIN_OPEN_FILES = 4_096;

export const METRICS: Metric[] = [
  { key: "small32_rps", label: "small, HTTP/1.1, 32 conns", unit: "req/s", better: "higher" },
  { key: "small32_p99", label: "small, HTTP/1.1, 32 conns, p99", unit: "ms", better: "lower" },
  { key: "cpu_per_request", label: "CPU per request, small 32 conns", unit: "µs", better: "lower" },
  { key: "cpu_cores", label: "CPU used, small 32 conns", unit: "cores", better: "neither" },
  { key: "small256_rps", label: "small, HTTP/1.1, 256 conns", unit: "req/s", better: "higher" },
  { key: "small256_p99", label: "small, HTTP/1.1, 256 conns, p99", unit: "ms", better: "lower" },
  { key: "h2_rps", label: "small, h2, 32 conns x 10 streams", unit: "req/s", better: "higher" },
  { key: "large_rps", label: "1 MiB, HTTP/1.1, 16 conns", unit: "req/s", better: "higher" },
  { key: "handshake_rps", label: "new TLS connections, 16 conns", unit: "conn/s", better: "higher" },
  { key: "download_mibs", label: "1 GiB download throughput", unit: "MiB/s", better: "higher" },
  { key: "upload_mibs", label: "1 GiB upload throughput", unit: "MiB/s", better: "higher" },
  { key: "rss_idle", label: "RSS idle after start", unit: "MiB", better: "lower" },
  {
    key: "rss_idle_acme",
    label: "RSS idle, issuer acme, no order due (floor: before its jobs)",
    unit: "MiB",
    better: "lower",
  },
  { key: "rss_idle_admin", label: "RSS idle, + admin listener (nexo)", unit: "MiB", better: "lower" },
  { key: "rss_idle_dashboard", label: "RSS idle, + admin dashboard (nexo)", unit: "MiB", better: "lower" },
  {
    key: "rss_idle_storage",
    label: "RSS idle, issuer acme + storage.redis, certificate in Redis (nexo)",
    unit: "MiB",
    better: "lower",
  },
  {
    key: "rss_idle_access",
    label: "RSS idle, + allow, deny, rate_limit and GitHub sign-in (nexo)",
    unit: "MiB",
    better: "lower",
  },
  { key: "rss_peak", label: "RSS peak, 256 conns", unit: "MiB", better: "lower" },
  { key: "rss_after_load", label: "RSS 60 s after the 256-conn load", unit: "MiB", better: "lower" },
  { key: "idle_conns_rss", label: "RSS with 1,000 idle keep-alive conns", unit: "MiB", better: "lower" },
  { key: "idle_conn_kib", label: "memory per idle keep-alive conn", unit: "KiB", better: "lower" },
  {
    key: "idle_conns_rss_settled",
    label: "RSS with 1,000 idle keep-alive conns, 40 s later",
    unit: "MiB",
    better: "lower",
  },
  {
    key: "idle_conn_kib_settled",
    label: "memory per idle keep-alive conn, 40 s later",
    unit: "KiB",
    better: "lower",
  },
  { key: "download_rss", label: "1 GiB download: RSS growth", unit: "MiB", better: "lower" },
  { key: "upload_rss", label: "1 GiB upload: RSS growth", unit: "MiB", better: "lower" },
  {
    key: "acme_rss_peak",
    label: "RSS peak during ACME issuance (worker resident)",
    unit: "MiB",
    better: "lower",
  },
  { key: "acme_rss_after", label: "RSS after issuance (worker gone)", unit: "MiB", better: "lower" },
  {
    key: "acme_rss_after_many",
    label: `RSS after ${ISSUANCES} issuances in a row`,
    unit: "MiB",
    better: "lower",
  },
  { key: "cold_start", label: "cold start to first proxied 200", unit: "ms", better: "lower" },
];

export const SCENARIOS = [
  `Upstream: nginx (1 worker) on plain HTTP; \`${SMALL_PATH}\` returns "hello world\\n" (12 bytes), ` +
  `\`${LARGE_PATH}\` is a 1 MiB static file, \`${HUGE_PATH}\` a 1 GiB sparse file (zeros), and ` +
  `\`${UPLOAD_PATH}\` passes request bodies unbuffered to a sink in the bench process that reads every byte ` +
  `before it answers 204 with the count (nginx's own \`return\` would answer before the body arrived).`,
  `small, HTTP/1.1: \`wrk --latency -t2 -cN -d${DURATION_SEC}s\` with keep-alive; p99 from wrk's latency ` +
  `distribution.`,
  `CPU: utime + stime from /proc/<pid>/stat, summed over the proxy's process tree, read before and after the ` +
  `32-connection run; per request = CPU seconds / requests wrk completed, cores = CPU seconds / wall seconds.`,
  `small, h2: \`h2load -n 20000 -c 32 -m 10\`.`,
  `1 MiB: \`wrk -t2 -c16 -d${DURATION_SEC}s\`.`,
  `new TLS connections: \`wrk -t2 -c16 -d${DURATION_SEC}s -H "Connection: close"\` on the small response; ` +
  `every request is a fresh TCP connection and a full TLS handshake (wrk does not resume sessions).`,
  `1 GiB transfers, one each way per round, each on a freshly started proxy (after one small request and ` +
  `${SETTLE_MS} ms): \`curl --http1.1\` downloads \`${HUGE_PATH}\` and uploads the ` +
  `same file to \`${UPLOAD_PATH}\` with PUT (\`-T\`: Content-Length known, no \`Expect: 100-continue\`); ` +
  `a transfer that does not carry all 1 GiB is a warning, not a number. Throughput is curl's average. nexo ` +
  `runs with \`max_body: 2GiB\`, the nginx proxy with \`client_max_body_size 0\` and ` +
  `\`proxy_request_buffering off\` (else it spools the upload to disk before sending it on); Caddy has no ` +
  `limit and streams by default.`,
  `RSS: VmRSS from /proc summed over the process tree (nginx master + workers; the Caddy and Deno processes), ` +
  `idle ${SETTLE_MS} ms after the first 200 (every fresh start of the run counts), and the peak sampled every 100 ms during the 256-connection run. ` +
  `1 GiB transfers: the peak sampled every 100 ms during the transfer minus the RSS just before it.`,
  `RSS idle for nexo's optional parts (nexo only, on fresh processes, alternating): the default run has ` +
  `\`issuer: internal\` (the local CA loaded); "issuer acme" serves the same certificate from cert_dir, so ` +
  `the ACME supervisor is loaded but orders nothing and starts no worker; "+ admin" is the default run with ` +
  `\`admin.listen\` set.`,
  `RSS after load: once per run, each server gets a \`wrk -c256 -d${DURATION_SEC}s\` burst after the rounds, ` +
  `then its RSS is read ${AFTER_LOAD_MS / 1000} s after its burst ended (what a server gives back once the ` +
  `traffic is gone).`,
  `Idle keep-alive connections, on a freshly started server (after one small request and ${SETTLE_MS} ms): ` +
  `the bench reads its RSS, opens ${IDLE.count.toLocaleString("en-US")} TLS connections ` +
  `(${IDLE.batch} at a time), sends one \`GET ${SMALL_PATH}\` on each and reads the 200, holds them all ` +
  `${IDLE.holdMs} ms and reads the RSS again; per connection = the difference / ${IDLE.count}. It reads it ` +
  `once more ${IDLE.settledMs / 1000} s after the last connection is up, still holding them all (the ` +
  `"40 s later" rows: connections are held for minutes, and a garbage-collected runtime gives back what ` +
  `the burst of requests grew once it has been idle a while).`,
  `ACME worker (once per run): a separate nexo with \`issuer: acme\` obtains a certificate for one ` +
  `name from a local Pebble over HTTP-01; the peak tree RSS from spawn until its \`/status\` reports the ` +
  `worker idle, and the RSS ${SETTLE_MS} ms after that; then ${ISSUANCES - 1} more names are added to the ` +
  `config one at a time, each waited for until its certificate is installed and the worker is gone, and the ` +
  `RSS is read ${SETTLE_MS} ms after the last. The floor column of these rows (and of "issuer acme" idle) is ` +
  `\`bench/floor_acme.ts\`: a bare Deno TLS server, run as nexo runs, that runs the same number of jobs one ` +
  `after another, each in a fresh Web Worker with narrowed permissions doing at Deno's level what an order ` +
  `does against the same Pebble (TLS requests to the directory, a nonce, a POST; two P-256 key generations, ` +
  `six signatures, two exports), followed by nexo's memory work after a job (a memory-reducing GC 1 s later, ` +
  `the SIGUSR2 trim 1 s after that; it does the same a second after it starts, as nexo does), and read the ` +
  `same way: idle ${SETTLE_MS} ms after its first 200, the peak from its first job's start to the reading ` +
  `${SETTLE_MS} ms after it, that reading, and the same after the last. Caddy and nginx have no such worker: ` +
  `n/a.`,
  `Cold start: from spawn to the first 200 through the proxy, polled with curl every 10 ms ` +
  `(nexo runs its bundle, \`dist/main.js\`, with \`deno run\`, module cache warm).`,
];

/** What a round needs besides the server: where samples and warnings go, and the shared files. */
export interface RoundContext {
  samples: Samples;
  warnings: string[];
  round: number;
  env: BenchEnv;
}

/**
 * One round for one proxy: the load scenarios. The 1 GiB transfers and the idle connections run on fresh
 * processes instead (`measureTransfer`, `measureIdleConnections`): after the load runs, a proxy's RSS is
 * already at its high-water mark and would show no growth whatever it held.
 */
export async function runScenarios(server: RunningServer, ctx: RoundContext): Promise<void> {
  await measureLoad(server, ctx);
}

/**
 * A `wrk -c256` burst on every server in turn, then each one's RSS `AFTER_LOAD_MS` after its own burst
 * (the bursts run back to back, so the waits overlap).
 */
export async function measureAfterLoad(servers: RunningServer[], ctx: RoundContext): Promise<void> {
  const ended: number[] = [];
  for (const server of servers) {
    const burst = await runWrk(server.url + SMALL_PATH, { connections: 256, durationSec: DURATION_SEC });
    if (burst.errors > 0) warn(server, ctx, "burst before after-load RSS", `${burst.errors} errors`);
    ended.push(performance.now());
  }
  for (const [i, server] of servers.entries()) {
    const wait = ended[i]! + AFTER_LOAD_MS - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    addSample(
      ctx.samples,
      "rss_after_load",
      server.name as ProxyName,
      await readTreeRss(server.proc.pid) / MIB,
    );
  }
}

async function measureLoad(server: RunningServer, ctx: RoundContext): Promise<void> {
  const name = server.name as ProxyName;
  const pid = server.proc.pid;
  const small = server.url + SMALL_PATH;
  const record = (scenario: string, result: { errors: number }) => {
    if (result.errors > 0) warn(server, ctx, scenario, `${result.errors} errors (non-2xx or socket)`);
  };
  const cpuBefore = await readTreeCpuSeconds(pid);
  const startedAt = performance.now();
  const c32 = await runWrk(small, { connections: 32, durationSec: DURATION_SEC });
  const wallSec = (performance.now() - startedAt) / 1000;
  const cpuSec = await readTreeCpuSeconds(pid) - cpuBefore;
  record("small 32 conns", c32);
  addSample(ctx.samples, "small32_rps", name, c32.requestsPerSec);
  addSample(ctx.samples, "small32_p99", name, c32.p99Ms ?? NaN);
  addSample(ctx.samples, "cpu_per_request", name, cpuSec / (c32.requests ?? NaN) * 1e6);
  addSample(ctx.samples, "cpu_cores", name, cpuSec / wallSec);

  const sampler = sampleRss(pid);
  const c256 = await runWrk(small, { connections: 256, durationSec: DURATION_SEC });
  addSample(ctx.samples, "rss_peak", name, await sampler.stop() / MIB);
  record("small 256 conns", c256);
  addSample(ctx.samples, "small256_rps", name, c256.requestsPerSec);
  addSample(ctx.samples, "small256_p99", name, c256.p99Ms ?? NaN);

  const h2 = await runH2load(small, { requests: 20_000, clients: 32, streams: 10 });
  record("h2", h2);
  addSample(ctx.samples, "h2_rps", name, h2.requestsPerSec);

  const large = await runWrk(server.url + LARGE_PATH, { connections: 16, durationSec: DURATION_SEC });
  record("1 MiB", large);
  addSample(ctx.samples, "large_rps", name, large.requestsPerSec);

  const fresh = await runWrk(small, {
    connections: 16,
    durationSec: DURATION_SEC,
    headers: ["Connection: close"],
  });
  record("new TLS connections", fresh);
  addSample(ctx.samples, "handshake_rps", name, fresh.requestsPerSec);
}

/** 1,000 idle keep-alive connections on a fresh `server`: the RSS they leave it at, and per connection. */
export async function measureIdleConnections(server: RunningServer, ctx: RoundContext): Promise<void> {
  const name = server.name as ProxyName;
  const pid = server.proc.pid;
  const caPem = await Deno.readTextFile(ctx.env.caFile);
  const before = await readTreeRss(pid);
  let held: number;
  let settled: number;
  try {
    [held, settled] = await withIdleConnections(server.url + SMALL_PATH, { ...IDLE, caPem }, async () => {
      const opened = performance.now();
      await new Promise((resolve) => setTimeout(resolve, IDLE.holdMs));
      const first = await readTreeRss(pid);
      await new Promise((resolve) => setTimeout(resolve, opened + IDLE.settledMs - performance.now()));
      return [first, await readTreeRss(pid)] as const;
    });
  } catch (err) {
    warn(server, ctx, "idle keep-alive conns", err instanceof Error ? err.message : String(err));
    return;
  }
  addSample(ctx.samples, "idle_conns_rss", name, held / MIB);
  addSample(ctx.samples, "idle_conn_kib", name, (held - before) / IDLE.count / 1024);
  addSample(ctx.samples, "idle_conns_rss_settled", name, settled / MIB);
  addSample(ctx.samples, "idle_conn_kib_settled", name, (settled - before) / IDLE.count / 1024);
}

/** One 1 GiB transfer through `server`: its throughput and the RSS it added (peak minus just before). */
export async function measureTransfer(
  server: RunningServer,
  ctx: RoundContext,
  direction: "download" | "upload",
): Promise<void> {
  const name = server.name as ProxyName;
  const upload = direction === "upload";
  const before = await readTreeRss(server.proc.pid);
  const sampler = sampleRss(server.proc.pid);
  let result: TransferResult;
  let peak: number;
  try {
    result = await runCurlTransfer(server.url + (upload ? UPLOAD_PATH : HUGE_PATH), {
      caFile: ctx.env.caFile,
      ...(upload ? { uploadFile: ctx.env.hugeFile, readHeader: RECEIVED_HEADER } : {}),
    });
  } finally {
    peak = await sampler.stop();
  }
  const expected = `${upload ? 204 : 200} with ${HUGE_BYTES} bytes${upload ? " received by the sink" : ""}`;
  const got = `${result.status} with ${result.bytes} bytes${upload ? `, sink read "${result.header}"` : ""}`;
  const complete = result.error === "" && result.status === (upload ? 204 : 200) &&
    result.bytes === HUGE_BYTES && (!upload || result.header === String(HUGE_BYTES));
  if (!complete) {
    warn(server, ctx, `1 GiB ${direction}`, `expected ${expected}, got ${got} ${result.error}`.trim());
    return;
  }
  addSample(ctx.samples, `${direction}_rss`, name, (peak - before) / MIB);
  addSample(ctx.samples, `${direction}_mibs`, name, result.bytesPerSec / MIB);
}

function warn(server: RunningServer, ctx: RoundContext, scenario: string, message: string): void {
  ctx.warnings.push(`${server.name}, round ${ctx.round}, ${scenario}: ${message}`);
}
