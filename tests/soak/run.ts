// `deno task soak [--duration 10m] [--seed N]`: a compressed day of production. Everything at once against
// real Pebble (30-second certificates, renewed over and over), pebble-challtestsrv, a fake Cloudflare failing
// 10% of calls, real upstreams (one restarted now and then) and nexo: HTTP/1.1 and h2 traffic, downloads and
// uploads checked byte for byte, a WebSocket and an event stream held open, a log appended beside the config,
// and config edits every few seconds (hosts added and removed, an upstream changed, invalid edits; in place,
// by rename, by symlink swap). Invariants are checked throughout; a table is printed at the end and the exit
// code is 1 when any failed. The README's test command runs it for 2 minutes.

import { parseArgs } from "node:util";
import {
  download,
  eventStream,
  type Outcome,
  smallGet,
  type Target,
  upload,
  webSocketSession,
} from "./traffic.ts";
import {
  EDIT_MODES,
  RESTARTING_HOST,
  type RouteState,
  STABLE_HOSTS,
  startWorld,
  type World,
  writeConfig,
} from "./world.ts";
import { checkInvariants, type EditRecord, failureTimelines, formatReport, type Sample } from "./report.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { duration: { type: "string", default: "10m" }, seed: { type: "string", default: "1" } },
});
const durationMs = parseDuration(values.duration!);
const seed = Number(values.seed);

/** "10m", "120s", "90000" (ms) to ms. */
function parseDuration(text: string): number {
  const match = /^(\d+)(ms|s|m)?$/.exec(text);
  if (!match) throw new Error(`--duration must look like 10m, 120s or 90000, got ${JSON.stringify(text)}`);
  return Number(match[1]) * ({ ms: 1, s: 1000, m: 60_000 }[match[2] ?? "ms"] ?? 1);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function main(): Promise<number> {
  const started = performance.now();
  const world = await startWorld({ seed, cloudflareFailureRate: 0.1 });
  const target: Target = { port: world.nexo.port, rootPemFile: world.rootPemFile };
  const outcomes: Outcome[] = [];
  const edits: EditRecord[] = [];
  const samples: Sample[] = [];
  const controller = new AbortController();
  const { signal } = controller;
  const logAt = world.nexo.logs.length;
  const loops: Promise<void>[] = [];
  const loop = (body: () => Promise<void>) =>
    loops.push((async () => {
      while (!signal.aborted) await body();
    })());
  const soakStart = performance.now();

  // Traffic, all the time, on hosts that exist for the whole run.
  for (const http2 of [false, true]) {
    loop(async () => {
      const hosts = [...STABLE_HOSTS, RESTARTING_HOST];
      outcomes.push(await smallGet(target, hosts[Math.floor(Math.random() * hosts.length)]!, http2));
    });
  }
  loop(async () => {
    outcomes.push(await download(target, "s1.example.com", 4));
    await sleep(2_000);
  });
  loop(async () => {
    outcomes.push(await upload(target, "s2.example.com", 2 * 1024 * 1024, world.nexo.dir));
    await sleep(3_000);
  });
  loop(async () => {
    outcomes.push(await webSocketSession(target, "s1.example.com", signal));
  });
  loop(async () => {
    outcomes.push(await eventStream(target, "solo.example.org", { count: 300, gapMs: 200, signal }));
  });
  // A request log beside the config, appended every 10 ms.
  const logFile = await Deno.open(`${world.nexo.dir}/access.log`, { create: true, append: true });
  loop(async () => {
    await logFile.write(new TextEncoder().encode(`${new Date().toISOString()} GET /soak 200\n`));
    await sleep(10);
  });
  // The upstream of r.example.com restarts every 15 s, down for a second.
  loop(async () => {
    await sleep(15_000);
    if (!signal.aborted) await world.restarting.restart(1_000);
  });
  // nexo's open descriptors and memory every 2 s.
  loop(async () => {
    samples.push(await sample(world.nexo.pid, performance.now() - soakStart));
    await sleep(2_000);
  });
  // Config edits every 3 s.
  loop(async () => {
    await editOnce(world, target, edits);
    await sleep(3_000);
  });

  await sleep(Math.max(0, durationMs - (performance.now() - started)));
  controller.abort();
  await Promise.all(loops);
  logFile.close();
  // Challenge records of an order in flight are removed when it ends; give the last one time to.
  const quietBy = performance.now() + 30_000;
  while (world.cloudflare.records().some((r) => r.type === "TXT") && performance.now() < quietBy) {
    await sleep(200);
  }
  const txtLeft = world.cloudflare.records().filter((r) => r.type === "TXT").length;
  await world.nexo.stop();
  const record = {
    outcomes,
    edits,
    samples,
    logs: world.nexo.logs.slice(logAt),
    rawOutput: world.nexo.output(),
    outages: world.restarting.outages,
    txtLeft,
    maxDuplicates: world.cloudflare.maxDuplicates,
    cloudflareCalls: world.cloudflare.requests.length,
  };
  const results = checkInvariants(record);
  await world.stop();
  const minutes = (performance.now() - started) / 60_000;
  // deno-lint-ignore no-console
  console.log(formatReport(results, { minutes, seed }));
  const timelines = failureTimelines(record);
  // deno-lint-ignore no-console
  if (timelines) console.log(timelines);
  return results.every((row) => row.ok) ? 0 : 1;
}

/** The next edit of the cycle, written, and checked until it shows (or 5 s pass). */
let state: RouteState = { churn: [], s2Base: false };
let editNumber = 0;

async function editOnce(world: World, target: Target, edits: EditRecord[]): Promise<void> {
  const n = editNumber++;
  const mode = EDIT_MODES[n % EDIT_MODES.length]!;
  const step = n % 4;
  if (step === 3) {
    // Invalid: rejected, and the last good config keeps serving.
    const logsBefore = world.nexo.logs.length;
    const written = performance.now();
    await writeConfig(world.configFile, world.brokenText(), mode);
    const rejected = await waitFor(
      () => world.nexo.logs.slice(logsBefore).some((l) => l.msg === "config reload rejected"),
      5_000,
    );
    const stillServing = (await smallGet(target, "s1.example.com", false)).error === null;
    edits.push({
      kind: "invalid",
      mode,
      ms: rejected ? performance.now() - written : null,
      ok: rejected && stillServing &&
        !world.nexo.logs.slice(logsBefore).some((l) => l.msg === "config reloaded"),
    });
    // The next valid edit writes the whole config again.
    return;
  }
  const next: RouteState = { churn: [...state.churn], s2Base: state.s2Base };
  let check: () => Promise<boolean>;
  let kind: EditRecord["kind"];
  if (step === 0) {
    const host = `c${n}.example.com`;
    next.churn.push(host);
    kind = "host added";
    check = async () => (await smallGet(target, host, false)).status === 200;
  } else if (step === 1 && next.churn.length > 0) {
    const host = next.churn.shift()!;
    kind = "host removed";
    check = async () => (await smallGet(target, host, false)).status === 404;
  } else {
    next.s2Base = !next.s2Base;
    kind = "upstream changed";
    const expected = next.s2Base ? "/base/soak" : "/soak";
    check = async () => {
      const res = await new Deno.Command("curl", {
        args: [
          "-sS",
          "--cacert",
          target.rootPemFile,
          "--resolve",
          `s2.example.com:${target.port}:127.0.0.1`,
          `https://s2.example.com:${target.port}/soak`,
        ],
        stdout: "piped",
      }).output();
      try {
        return JSON.parse(new TextDecoder().decode(res.stdout)).path === expected;
      } catch {
        return false;
      }
    };
  }
  const written = performance.now();
  await writeConfig(world.configFile, world.configText(next), mode);
  state = next;
  const shown = await waitFor(check, 5_000);
  const ms = performance.now() - written;
  edits.push({ kind, mode, ms: shown ? ms : null, ok: shown && ms <= 1_000 });
}

/** Polls `check` until it is true or `timeoutMs` passed. */
async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (await check()) return true;
    await sleep(20);
  }
  return false;
}

/** nexo's open descriptors and resident memory now. */
async function sample(pid: number, atMs: number): Promise<Sample> {
  let fds = 0;
  for await (const _ of Deno.readDir(`/proc/${pid}/fd`)) fds++;
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const rssKib = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return { atMs, fds, rssMib: rssKib / 1024 };
}

if (import.meta.main) Deno.exit(await main());
