// Side-by-side benchmark of nexo, Caddy and nginx as TLS reverse proxies in front of one nginx upstream:
// `deno run -A bench/run.ts`. Orchestrates the rounds and writes docs/benchmarks.md; starting servers,
// driving load and rendering the page live in servers.ts, load.ts and report.ts. Exits non-zero only when
// something fails to run (a missing tool, a server that does not start), never because a number is slow.

import { dirname, join } from "node:path";
import { LocalCa } from "../lib/tls/local_ca.ts";
import { runH2load, runWrk } from "./load.ts";
import { readTreeRss, sampleRss } from "./process.ts";
import { addSample, type Metric, renderPage, renderTable, type Samples } from "./report.ts";
import {
  type BenchEnv,
  LARGE_PATH,
  PROXY_NAMES,
  type ProxyName,
  type RunningServer,
  SMALL_PATH,
  startProxy,
  startUpstream,
} from "./servers.ts";

/**
 * Three rounds of 5 s runs keep the whole benchmark near five minutes on a 2-CPU machine while giving a
 * median that one noisy run cannot move.
 */
const ROUNDS = 3;
const DURATION_SEC = 5;
const WARMUP_SEC = 2;
/** Let a freshly started server finish its lazy initialisation before its idle memory is read. */
const SETTLE_MS = 1_000;
const MIB = 1024 * 1024;
const COMMAND = "deno run -A bench/run.ts";
const PAGE_PATH = new URL("../docs/benchmarks.md", import.meta.url).pathname;

const METRICS: Metric[] = [
  { key: "small32_rps", label: "small, HTTP/1.1, 32 conns", unit: "req/s", better: "higher" },
  { key: "small32_p99", label: "small, HTTP/1.1, 32 conns, p99", unit: "ms", better: "lower" },
  { key: "small256_rps", label: "small, HTTP/1.1, 256 conns", unit: "req/s", better: "higher" },
  { key: "small256_p99", label: "small, HTTP/1.1, 256 conns, p99", unit: "ms", better: "lower" },
  { key: "h2_rps", label: "small, h2, 32 conns x 10 streams", unit: "req/s", better: "higher" },
  { key: "large_rps", label: "1 MiB, HTTP/1.1, 16 conns", unit: "req/s", better: "higher" },
  { key: "handshake_rps", label: "new TLS connections, 16 conns", unit: "conn/s", better: "higher" },
  { key: "rss_idle", label: "RSS idle after start", unit: "MiB", better: "lower" },
  { key: "rss_peak", label: "RSS peak, 256 conns", unit: "MiB", better: "lower" },
  { key: "cold_start", label: "cold start to first proxied 200", unit: "ms", better: "lower" },
];

const SCENARIOS = [
  `Upstream: nginx (1 worker) on plain HTTP; \`${SMALL_PATH}\` returns "hello world\\n" (12 bytes), ` +
  `\`${LARGE_PATH}\` is a 1 MiB static file.`,
  `small, HTTP/1.1: \`wrk --latency -t2 -cN -d${DURATION_SEC}s\` with keep-alive; p99 from wrk's latency ` +
  `distribution.`,
  `small, h2: \`h2load -n 20000 -c 32 -m 10\`.`,
  `1 MiB: \`wrk -t2 -c16 -d${DURATION_SEC}s\`.`,
  `new TLS connections: \`wrk -t2 -c16 -d${DURATION_SEC}s -H "Connection: close"\` on the small response; ` +
  `every request is a fresh TCP connection and a full TLS handshake (wrk does not resume sessions).`,
  `RSS: VmRSS from /proc summed over the process tree (nginx master + workers; the Caddy and Deno processes), ` +
  `idle ${SETTLE_MS} ms after the first 200, and the peak sampled every 100 ms during the 256-connection run.`,
  `Cold start: from spawn to the first 200 through the proxy, polled with curl every 10 ms ` +
  `(nexo runs from source with \`deno run\`, module cache warm).`,
];

const TOOLS: [string, string[]][] = [
  ["nginx", ["-v"]],
  ["caddy", ["version"]],
  ["wrk", ["-v"]],
  ["h2load", ["--version"]],
  ["curl", ["--version"]],
];

async function main(): Promise<void> {
  const versions = [`deno ${Deno.version.deno}`, ...await checkTools()];
  const dir = await Deno.makeTempDir({ prefix: "nexo-bench-" });
  const running = new Set<RunningServer>();
  const stopAll = () => Promise.all([...running].map((s) => s.proc.stop()));
  const onSignal = () => {
    stopAll().finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    const env = await makeCertificate(dir);
    const upstream = await startUpstream(env);
    running.add(upstream);
    const samples: Samples = new Map();
    const warnings: string[] = [];
    const proxies = {} as Record<ProxyName, RunningServer>;
    for (const name of PROXY_NAMES) {
      proxies[name] = await startProxy(name, env, upstream.url);
      running.add(proxies[name]);
      await sleep(SETTLE_MS);
      addSample(samples, "rss_idle", name, await readTreeRss(proxies[name].proc.pid) / MIB);
      await runWrk(proxies[name].url + SMALL_PATH, { connections: 32, durationSec: WARMUP_SEC });
      say(`${name} ready at ${proxies[name].url} (log: ${proxies[name].logPath})`);
    }
    for (let round = 1; round <= ROUNDS; round++) {
      for (const name of PROXY_NAMES) {
        say(`round ${round}/${ROUNDS}: ${name}`);
        await runScenarios(proxies[name], { samples, warnings, round });
      }
    }
    for (const name of PROXY_NAMES) {
      running.delete(proxies[name]);
      await proxies[name].proc.stop();
    }
    await measureColdStarts(env, upstream.url, samples, running);
    const table = renderTable(METRICS, samples);
    const page = renderPage(table, {
      ...await describeMachine(),
      versions,
      warnings,
      command: COMMAND,
      rounds: ROUNDS,
      scenarios: SCENARIOS,
    });
    await Deno.mkdir(dirname(PAGE_PATH), { recursive: true });
    await Deno.writeTextFile(PAGE_PATH, page);
    await Deno.stdout.write(new TextEncoder().encode(`${table}\n\nWritten to ${PAGE_PATH}\n`));
  } finally {
    await stopAll();
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** One round for one proxy: every load scenario once, recording medians' raw samples and tool errors. */
async function runScenarios(
  server: RunningServer,
  ctx: { samples: Samples; warnings: string[]; round: number },
): Promise<void> {
  const name = server.name as ProxyName;
  const small = server.url + SMALL_PATH;
  const record = (scenario: string, result: { errors: number }) => {
    if (result.errors > 0) {
      ctx.warnings.push(
        `${name}, round ${ctx.round}, ${scenario}: ${result.errors} errors (non-2xx or socket)`,
      );
    }
  };
  const c32 = await runWrk(small, { connections: 32, durationSec: DURATION_SEC });
  record("small 32 conns", c32);
  addSample(ctx.samples, "small32_rps", name, c32.requestsPerSec);
  addSample(ctx.samples, "small32_p99", name, c32.p99Ms ?? NaN);

  const sampler = sampleRss(server.proc.pid);
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

/** Starts and stops each proxy `ROUNDS` times, alternating, recording spawn-to-first-200 in ms. */
async function measureColdStarts(
  env: BenchEnv,
  upstreamUrl: string,
  samples: Samples,
  running: Set<RunningServer>,
): Promise<void> {
  for (let round = 1; round <= ROUNDS; round++) {
    for (const name of PROXY_NAMES) {
      const server = await startProxy(name, env, upstreamUrl);
      running.add(server);
      addSample(samples, "cold_start", name, server.readyMs);
      running.delete(server);
      await server.proc.stop();
    }
  }
  say("cold starts measured");
}

/** A throwaway CA and a leaf for "localhost", written under `dir`. */
async function makeCertificate(dir: string): Promise<BenchEnv> {
  const ca = await LocalCa.loadOrCreate(join(dir, "ca"));
  const leaf = await ca.issue(["localhost"]);
  const env: BenchEnv = {
    dir,
    certFile: join(dir, "localhost.crt"),
    keyFile: join(dir, "localhost.key"),
    caFile: join(dir, "ca/root.crt"),
  };
  await Deno.writeTextFile(env.certFile, leaf.certPem);
  await Deno.writeTextFile(env.keyFile, leaf.keyPem, { mode: 0o600 });
  return env;
}

/** Fails fast, before any server starts, when a tool is missing; returns each tool's version line. */
async function checkTools(): Promise<string[]> {
  const versions: string[] = [];
  for (const [tool, args] of TOOLS) {
    let output: Deno.CommandOutput;
    try {
      output = await new Deno.Command(tool, { args, stdout: "piped", stderr: "piped" }).output();
    } catch (err) {
      throw new Error(
        `Cannot run "${tool}": ${(err as Error).message} ` +
          `(install it: apt-get install caddy nginx-light wrk nghttp2-client curl)`,
        { cause: err },
      );
    }
    const text = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
    versions.push(`${tool} ${/\d+\.\d+(\.\d+)?/.exec(text)?.[0] ?? "unknown"}`);
  }
  return versions;
}

async function describeMachine(): Promise<{ date: string; nproc: number; kernel: string; cpu: string }> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  return {
    date: new Date().toISOString().slice(0, 10),
    nproc: Number(new TextDecoder().decode((await new Deno.Command("nproc").output()).stdout)),
    kernel: Deno.osRelease(),
    cpu: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? "unknown CPU",
  };
}

function say(message: string): void {
  Deno.stderr.writeSync(new TextEncoder().encode(`[bench] ${message}\n`));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

if (import.meta.main) {
  try {
    await main();
  } catch (err) {
    say(`failed: ${err instanceof Error ? err.message : String(err)}`);
    Deno.exit(1);
  }
}
