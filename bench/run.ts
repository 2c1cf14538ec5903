// Side-by-side benchmark of nexo, Caddy and nginx as TLS reverse proxies in front of one nginx upstream:
// `deno run -A bench/run.ts`. Orchestrates the rounds and writes docs/benchmarks.md; what a round measures
// is in scenarios.ts, the ACME worker's cost in acme_cost.ts, starting servers in servers.ts, rendering the
// page in report.ts. Exits non-zero only when something fails to run (a missing tool, a server that does not
// start, too few file descriptors), never because a number is slow; a proxy failing a scenario is a warning.

import { dirname, join } from "node:path";
import { LocalCa } from "../lib/tls/local_ca.ts";
import { bundledMain } from "../tests/bundle.ts";
import { type AcmeCostOptions, measureAcmeCost } from "./acme_cost.ts";
import { runWrk } from "./load.ts";
import { readOpenFileLimit, readTreeRss } from "./process.ts";
import { addSample, median, renderPage, renderTable, type Samples } from "./report.ts";
import {
  measureAfterLoad,
  measureIdleConnections,
  measureTransfer,
  METRICS,
  MIB,
  MIN_OPEN_FILES,
  runScenarios,
  SCENARIOS,
  SETTLE_MS,
} from "./scenarios.ts";
import {
  type BenchEnv,
  HUGE_BYTES,
  type NexoVariant,
  PROXY_NAMES,
  type ProxyName,
  type RunningServer,
  SMALL_PATH,
  startProxy,
  startUpstream,
} from "./servers.ts";
import { startUploadSink } from "./upload_sink.ts";
import { sleep } from "../lib/sleep.ts";

/**
 * Three rounds keep the whole benchmark near six minutes on a 2-CPU machine while giving a median that one
 * noisy run cannot move. The ACME scenario runs once: it takes seconds and has nothing to alternate with.
 */
const ROUNDS = 3;
const WARMUP_SEC = 2;
const COMMAND = "deno run -A bench/run.ts";
const PAGE_PATH = new URL("../docs/benchmarks.md", import.meta.url).pathname;

const TOOLS: [string, string[]][] = [
  ["nginx", ["-v"]],
  ["caddy", ["version"]],
  ["wrk", ["-v"]],
  ["h2load", ["--version"]],
  ["curl", ["--version"]],
];

async function main(): Promise<void> {
  const versions = [`deno ${Deno.version.deno}`, ...await checkTools()];
  // nexo runs as it ships: the bundle `deno task build` writes (tests/bundle.ts).
  await bundledMain();
  await checkOpenFileLimit();
  const dir = await Deno.makeTempDir({ prefix: "nexo-bench-" });
  const running = new Set<RunningServer>();
  /** Stops for processes that are not a RunningServer (the ACME scenario's). */
  const cleanups = new Set<() => Promise<void>>();
  const sink = startUploadSink();
  const stopAll = () =>
    Promise.all([...[...running].map((s) => s.proc.stop()), ...[...cleanups].map((stop) => stop())]);
  const onSignal = () => {
    stopAll().finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    const env = await makeEnv(dir);
    const upstream = await startUpstream(env, sink.url);
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
        await runScenarios(proxies[name], { samples, warnings, round, env });
      }
    }
    await measureAfterLoad(PROXY_NAMES.map((name) => proxies[name]), { samples, warnings, round: 0, env });
    say("RSS after load measured");
    for (const name of PROXY_NAMES) {
      running.delete(proxies[name]);
      await proxies[name].proc.stop();
    }
    await measureNexoVariants(env, upstream.url, samples, running);
    await measureAcme(env, { upstreamUrl: upstream.url, cleanups }, { samples, warnings });
    await measureColdStarts(env, upstream.url, { samples, warnings }, running);
    await writePage(samples, { versions, warnings });
  } finally {
    await stopAll();
    await sink.stop();
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/**
 * The ACME worker's memory, once per run (nexo only). A missing Pebble or a failed issuance is a warning:
 * the rest of the page is still worth writing.
 */
async function measureAcme(
  env: BenchEnv,
  options: AcmeCostOptions,
  { samples, warnings }: { samples: Samples; warnings: string[] },
): Promise<void> {
  try {
    const cost = await measureAcmeCost(env, options);
    if ("skipped" in cost) {
      warnings.push(`ACME worker scenario skipped: ${cost.skipped}`);
      return;
    }
    addSample(samples, "acme_rss_peak", "nexo", cost.peakRss / MIB);
    addSample(samples, "acme_rss_after", "nexo", cost.afterRss / MIB);
    addSample(samples, "acme_rss_after_many", "nexo", cost.afterManyRss / MIB);
    say(`ACME certificate issued in ${Math.round(cost.issueMs)} ms`);
    if ("failed" in cost.floor) {
      warnings.push(`floor, ACME rows: ${cost.floor.failed}`);
      return;
    }
    // nexo's idle with issuer acme is its own row, from fresh processes (measureNexoVariants).
    addSample(samples, "rss_idle_acme", "floor", cost.floor.idleRss / MIB);
    addSample(samples, "acme_rss_peak", "floor", cost.floor.peakRss / MIB);
    addSample(samples, "acme_rss_after", "floor", cost.floor.afterRss / MIB);
    addSample(samples, "acme_rss_after_many", "floor", cost.floor.afterManyRss / MIB);
  } catch (err) {
    warnings.push(`nexo, ACME worker scenario failed: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Renders the page from the samples, writes it to `PAGE_PATH` and prints the table. */
async function writePage(samples: Samples, info: { versions: string[]; warnings: string[] }): Promise<void> {
  const table = renderTable(METRICS, samples);
  const cores = samples.get("cpu_cores");
  const page = renderPage(table, {
    ...await describeMachine(),
    ...info,
    command: COMMAND,
    rounds: ROUNDS,
    scenarios: SCENARIOS,
    coresUsed: Object.fromEntries(PROXY_NAMES.map((name) => [name, median(cores?.[name] ?? [])])) as Record<
      ProxyName,
      number
    >,
  });
  await Deno.mkdir(dirname(PAGE_PATH), { recursive: true });
  await Deno.writeTextFile(PAGE_PATH, page);
  await Deno.stdout.write(new TextEncoder().encode(`${table}\n\nWritten to ${PAGE_PATH}\n`));
}

/**
 * nexo's idle RSS with each optional part (NexoVariant), fresh processes, alternating with the default run so
 * that the rows compare like with like.
 */
async function measureNexoVariants(
  env: BenchEnv,
  upstreamUrl: string,
  samples: Samples,
  running: Set<RunningServer>,
): Promise<void> {
  const rows: Record<Exclude<NexoVariant, "internal">, string> = {
    acme: "rss_idle_acme",
    admin: "rss_idle_admin",
    access: "rss_idle_access",
    storage: "rss_idle_storage",
    dashboard: "rss_idle_dashboard",
  };
  for (let round = 1; round <= ROUNDS; round++) {
    for (const variant of ["acme", "admin", "access", "storage", "dashboard"] as const) {
      const server = await startProxy("nexo", env, upstreamUrl, variant);
      running.add(server);
      await sleep(SETTLE_MS);
      addSample(samples, rows[variant], "nexo", await readTreeRss(server.proc.pid) / MIB);
      running.delete(server);
      await server.proc.stop();
    }
  }
  say("nexo's optional parts measured");
}

/**
 * Starts and stops each proxy `ROUNDS` times, alternating, recording spawn-to-first-200 in ms; each fresh
 * process then carries one 1 GiB transfer (download or upload, a fresh start for each) or the 1,000 idle
 * connections, so that what they add is measured from the idle state.
 */
async function measureColdStarts(
  env: BenchEnv,
  upstreamUrl: string,
  { samples, warnings }: { samples: Samples; warnings: string[] },
  running: Set<RunningServer>,
): Promise<void> {
  for (let round = 1; round <= ROUNDS; round++) {
    for (const phase of ["download", "upload", "idle connections"] as const) {
      for (const name of PROXY_NAMES) {
        const server = await startProxy(name, env, upstreamUrl);
        running.add(server);
        if (phase === "download") addSample(samples, "cold_start", name, server.readyMs);
        await sleep(SETTLE_MS);
        addSample(samples, "rss_idle", name, await readTreeRss(server.proc.pid) / MIB);
        const ctx = { samples, warnings, round, env };
        if (phase === "idle connections") await measureIdleConnections(server, ctx);
        else await measureTransfer(server, ctx, phase);
        running.delete(server);
        await server.proc.stop();
      }
    }
  }
  say("cold starts, transfers and idle connections measured");
}

/** A throwaway CA and a leaf for "localhost", and the sparse 1 GiB file, written under `dir`. */
async function makeEnv(dir: string): Promise<BenchEnv> {
  const ca = await LocalCa.loadOrCreate(join(dir, "ca"));
  const leaf = await ca.issue(["localhost"]);
  const env: BenchEnv = {
    dir,
    certFile: join(dir, "localhost.crt"),
    keyFile: join(dir, "localhost.key"),
    caFile: join(dir, "ca/root.crt"),
    hugeFile: join(dir, "1gib.bin"),
  };
  await Deno.writeTextFile(env.certFile, leaf.certPem);
  await Deno.writeTextFile(env.keyFile, leaf.keyPem, { mode: 0o600 });
  // Extending a file with truncate leaves a hole: reads return zeros and no disk block is written.
  using huge = await Deno.open(env.hugeFile, { create: true, write: true });
  await huge.truncate(HUGE_BYTES);
  return env;
}

/** Fails before any server starts when the idle-connection scenario would run out of file descriptors. */
async function checkOpenFileLimit(): Promise<void> {
  const limit = await readOpenFileLimit();
  if (limit < MIN_OPEN_FILES) {
    throw new Error(
      `The open-file limit is ${limit}, below the ${MIN_OPEN_FILES} the 1,000 idle connections need ` +
        `(the bench, and nexo and Caddy, which inherit it, hold one per connection): run ` +
        `\`ulimit -n ${MIN_OPEN_FILES}\` in this shell first`,
    );
  }
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

if (import.meta.main) {
  try {
    await main();
  } catch (err) {
    say(`failed: ${err instanceof Error ? err.message : String(err)}`);
    Deno.exit(1);
  }
}
