// What nexo's ACME worker costs in memory: a separate nexo with `issuer: acme` obtains one certificate from
// a local Pebble over HTTP-01 (the setup tests/acme_e2e_test.ts proves), while its process tree's RSS is
// sampled; then the same after the worker has exited. Then the same for the floor (bench/floor_acme.ts): a
// bare Deno server running ACME-like jobs in Web Workers against the same Pebble. Caddy and nginx have no
// comparable worker.

import { join } from "node:path";
import { bundledMain } from "../tests/bundle.ts";
import { startChallTestSrv } from "../tests/challtestsrv.ts";
import { startPebble } from "../tests/pebble.ts";
import { sleep } from "../lib/sleep.ts";
import { findFreePort, readTreeRss, sampleRss, spawnLogged, waitForLogLine } from "./process.ts";
import { type BenchEnv, nexoServerCommand, type RunningServer, startFloorAcme } from "./servers.ts";

/**
 * The measurement, in bytes and ms: the peak while the first certificate is obtained, the RSS after it (worker
 * gone), and after `ISSUANCES` in a row (each a route added by a config edit); `skipped` instead when Pebble
 * is not installed.
 */
export type AcmeCost =
  | NexoAcmeCost & {
    /** The same for the floor, with its idle RSS before its first job; `failed` when it could not run. */
    floor: FloorAcmeCost | { failed: string };
  }
  | { skipped: string };

/** nexo's figures in bytes, and the time its first certificate took in ms. */
export interface NexoAcmeCost {
  peakRss: number;
  afterRss: number;
  afterManyRss: number;
  issueMs: number;
}

/** The floor's figures in bytes, read as nexo's are: idle, the peak of its first job, after it, after all. */
export interface FloorAcmeCost {
  idleRss: number;
  peakRss: number;
  afterRss: number;
  afterManyRss: number;
}

/** Issuances in a row for the "after many" figure: enough to show a trend, one step per new route. */
export const ISSUANCES = 10;

/** Options for `measureAcmeCost`. */
export interface AcmeCostOptions {
  /** Where nexo proxies to (the route needs an upstream; nothing is requested). */
  upstreamUrl: string;
  /**
   * Holds a stop function for each process running at the moment, so that an interrupted run can stop them;
   * each is removed once it has run.
   */
  cleanups: Set<() => Promise<void>>;
}

/**
 * Issuance against Pebble without validation sleeps takes one to a few seconds; a minute means it is stuck.
 * The worker is terminated right after it reports "done", so its state flips within milliseconds of the
 * "certificate installed" line. The RSS after is read as long after that as the idle RSS after a start
 * (checked: it did not move in the following 15 s).
 */
const ISSUE_TIMEOUT_MS = 60_000;
const WORKER_EXIT_TIMEOUT_MS = 10_000;
const SETTLE_MS = 1_000;
/** The n-th name (from 1) that gets a certificate. */
function nameOf(n: number): string {
  return n === 1 ? "bench.example.net" : `bench${n}.example.net`;
}
const BINARIES = ["pebble", "pebble-challtestsrv"];

/**
 * Starts pebble-challtestsrv (Pebble's DNS, answering 127.0.0.1), Pebble, and nexo configured to obtain a
 * certificate for one name through HTTP-01 on its `http_listen`, proxying to `upstreamUrl`. Resolves with the
 * tree RSS peak from spawn until the worker is gone (`/status` on the admin listener says "idle"), and the
 * RSS a moment after. Throws when issuance fails or times out (naming nexo's log); stops everything it started.
 */
export async function measureAcmeCost(env: BenchEnv, options: AcmeCostOptions): Promise<AcmeCost> {
  const missing = [];
  for (const binary of BINARIES) if (!await isOnPath(binary)) missing.push(binary);
  if (missing.length > 0) {
    return { skipped: `${missing.join(" and ")} not found on PATH (apt-get install pebble)` };
  }
  const dir = await Deno.makeTempDir({ dir: env.dir, prefix: "nexo-acme-" });
  const dns = await startChallTestSrv();
  const stopDns = track(options.cleanups, () => dns.stop());
  try {
    const httpPort = findFreePort();
    const pebble = await startPebble({ dnsServer: dns.dnsServer, httpPort });
    const stopPebble = track(options.cleanups, () => pebble.stop());
    try {
      const caFile = join(dir, "pebble-api-ca.pem");
      await Deno.writeTextFile(caFile, pebble.apiCaPem);
      const adminPort = findFreePort();
      // Chosen once: a config rewrite that changed it would move the listener too, which is not an issuance.
      const httpsPort = findFreePort();
      const config = (names: string[]) =>
        [
          `base_dir: ${dir}`,
          `listen: 127.0.0.1:${httpsPort}`,
          `http_listen: 127.0.0.1:${httpPort}`,
          `issuer: acme`,
          `acme:`,
          `  directory: ${pebble.directoryUrl}`,
          `  ca_cert: ${caFile}`,
          `admin:`,
          `  listen: 127.0.0.1:${adminPort}`,
          `proxies:`,
          ...names.flatMap((
            name,
          ) => [`  "${name}":`, `    upstream: ${options.upstreamUrl}`, `    access_log: false`]),
          ``,
        ].join("\n");
      const configPath = join(dir, "config.yaml");
      await Deno.writeTextFile(configPath, config([nameOf(1)]));
      const statusUrl = `http://127.0.0.1:${adminPort}/status`;
      const nexo = await runIssuance(configPath, {
        dir,
        statusUrl,
        cleanups: options.cleanups,
        // Rewritten whole (write to a temp file, then rename), as editors and deploy tools do.
        addRoute: async (count) => {
          await Deno.writeTextFile(
            configPath + ".tmp",
            config(Array.from({ length: count }, (_, i) => nameOf(i + 1))),
          );
          await Deno.rename(configPath + ".tmp", configPath);
        },
      });
      let floor: FloorAcmeCost | { failed: string };
      try {
        floor = await runFloorJobs(env, { directoryUrl: pebble.directoryUrl, caFile }, options.cleanups);
      } catch (error) {
        floor = { failed: error instanceof Error ? error.message : String(error) };
      }
      return { ...nexo, floor };
    } finally {
      await stopPebble();
    }
  } finally {
    await stopDns();
  }
}

/**
 * The floor's run, read as nexo's is: its RSS `SETTLE_MS` after its first 200, the peak from its first job's
 * start to the RSS `SETTLE_MS` after that job's worker is gone, that RSS, and the same after the
 * `ISSUANCES`-th job. Throws when a job fails.
 */
async function runFloorJobs(
  env: BenchEnv,
  ca: { directoryUrl: string; caFile: string },
  cleanups: Set<() => Promise<void>>,
): Promise<FloorAcmeCost> {
  const floor: RunningServer = await startFloorAcme(env, ca);
  const stop = track(cleanups, () => floor.proc.stop());
  try {
    const job = async (n: number) => {
      Deno.kill(floor.proc.pid, "SIGUSR1");
      const line = await waitForLogLine(
        floor.logPath,
        (line) => line.msg === "job failed" || (line.msg === "job done" && line.jobs === n),
        { proc: floor.proc, timeoutMs: ISSUE_TIMEOUT_MS },
      );
      if (line.msg === "job failed") throw new Error(`the floor's job ${n} failed: ${line.error}`);
    };
    await sleep(SETTLE_MS);
    const idleRss = await readTreeRss(floor.proc.pid);
    // Sampled up to the reading after the job: a worker lives for a few 100 ms samples at most.
    const sampler = sampleRss(floor.proc.pid);
    let peakRss: number;
    let afterRss: number;
    try {
      await job(1);
      await sleep(SETTLE_MS);
      afterRss = await readTreeRss(floor.proc.pid);
    } finally {
      peakRss = await sampler.stop();
    }
    for (let n = 2; n <= ISSUANCES; n++) await job(n);
    await sleep(SETTLE_MS);
    return {
      idleRss,
      peakRss: Math.max(peakRss, afterRss),
      afterRss,
      afterManyRss: await readTreeRss(floor.proc.pid),
    };
  } finally {
    await stop();
  }
}

async function runIssuance(
  configPath: string,
  options: {
    dir: string;
    statusUrl: string;
    cleanups: Set<() => Promise<void>>;
    /** Makes the config hold the first `count` names. */
    addRoute: (count: number) => Promise<void>;
  },
): Promise<NexoAcmeCost> {
  const logPath = join(options.dir, "output.log");
  await bundledMain(); // built once per process, before the clock starts: nexo runs as it ships
  const startedAt = performance.now();
  const { args, env } = nexoServerCommand(configPath);
  const proc = spawnLogged(Deno.execPath(), args, { logPath, env });
  const stopNexo = track(options.cleanups, () => proc.stop());
  const sampler = sampleRss(proc.pid);
  try {
    const installed = (name: string) =>
      waitForLogLine(logPath, (line) => line.msg === "certificate installed" && line.names === name, {
        proc,
        timeoutMs: ISSUE_TIMEOUT_MS,
      });
    await installed(nameOf(1));
    const issueMs = performance.now() - startedAt;
    await waitForWorkerExit(options.statusUrl, logPath);
    const peakRss = await sampler.stop();
    await sleep(SETTLE_MS);
    const afterRss = await readTreeRss(proc.pid);
    for (let n = 2; n <= ISSUANCES; n++) {
      await options.addRoute(n);
      await installed(nameOf(n));
      await waitForWorkerExit(options.statusUrl, logPath);
    }
    await sleep(SETTLE_MS);
    return { peakRss, afterRss, afterManyRss: await readTreeRss(proc.pid), issueMs };
  } finally {
    await sampler.stop();
    await stopNexo();
  }
}

/** Puts a run-once `stop` into `cleanups`; the returned function runs it and takes it out again. */
function track(cleanups: Set<() => Promise<void>>, stop: () => Promise<void>): () => Promise<void> {
  let stopping: Promise<void> | undefined;
  const once = () => stopping ??= stop();
  cleanups.add(once);
  return async () => {
    cleanups.delete(once);
    await once();
  };
}

/** Polls nexo's `/status` until `acme.worker` is "idle" (lib/acme/supervisor.ts `state()`). */
async function waitForWorkerExit(statusUrl: string, logPath: string): Promise<void> {
  const deadline = performance.now() + WORKER_EXIT_TIMEOUT_MS;
  while (performance.now() < deadline) {
    const response = await fetch(statusUrl);
    const status = await response.json();
    if (status?.acme?.worker === "idle") return;
    await sleep(20);
  }
  throw new Error(
    `nexo's ACME worker was still running ${WORKER_EXIT_TIMEOUT_MS} ms after the certificate was ` +
      `installed (see "${logPath}")`,
  );
}

async function isOnPath(binary: string): Promise<boolean> {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (dir === "") continue;
    try {
      if ((await Deno.stat(join(dir, binary))).isFile) return true;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
  return false;
}
