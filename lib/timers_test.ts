import assert from "node:assert/strict";
import { findInLib } from "../tests/lib_sources.ts";
import { sleep } from "./sleep.ts";
import { CORE_TIMERS, startInterval, startTimer, stopTimer, type Timer } from "./timers.ts";

const TIMERS_URL = new URL("./timers.ts", import.meta.url).href;

Deno.test("the timers run on deno_core's timer list under the Deno version nexo pins", () => {
  if (Deno.version.deno !== "2.9.6") return; // another version may lack it: the globals then (below)
  assert.ok(CORE_TIMERS !== null, "Deno[Deno.internal].core has no createTimer, cancelTimer and unrefTimer");
});

Deno.test("startTimer() calls back once, no sooner than asked", async () => {
  const startedAt = performance.now();
  const calls: number[] = [];
  startTimer(() => calls.push(performance.now() - startedAt), 30);
  await sleep(120);
  assert.equal(calls.length, 1);
  assert.ok(calls[0]! >= 29, `fired after ${calls[0]} ms`);
});

Deno.test("stopTimer() before the time means no call; after it, or twice, or on undefined, nothing", async () => {
  let calls = 0;
  const stopped = startTimer(() => calls++, 20);
  stopTimer(stopped);
  stopTimer(stopped);
  stopTimer(undefined);
  const fired = startTimer(() => calls++, 1);
  await sleep(60);
  stopTimer(fired);
  assert.equal(calls, 1);
});

Deno.test("startInterval() repeats until stopped", async () => {
  let calls = 0;
  let timer: Timer | undefined = undefined;
  await new Promise<void>((resolve) => {
    timer = startInterval(() => {
      if (++calls === 3) resolve();
    }, 5);
  });
  stopTimer(timer);
  await sleep(40);
  assert.equal(calls, 3);
});

/** Runs `code` (a module importing lib/timers.ts) in a fresh process; its stdout, and how long it ran. */
async function runScript(code: string, env: Record<string, string> = {}) {
  // A file, not `deno eval`: Deno keeps no code cache for evaluated code, so it would log no modules.
  const script = await Deno.makeTempFile({ suffix: ".ts" });
  await Deno.writeTextFile(script, code);
  const startedAt = performance.now();
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", script],
    env,
    stdout: "piped",
    stderr: "piped",
  })
    .output()
    .finally(() => Deno.remove(script));
  return {
    stdout: new TextDecoder().decode(output.stdout),
    stderr: new TextDecoder().decode(output.stderr),
    ms: performance.now() - startedAt,
  };
}

Deno.test("a pending timer keeps the process alive, unless unrefTimer() let it go", async () => {
  const kept = await runScript(
    `import { startTimer } from "${TIMERS_URL}"; startTimer(() => console.log("fired"), 300);`,
  );
  assert.equal(kept.stdout, "fired\n", kept.stderr);
  const released = await runScript(
    `import { startTimer, unrefTimer } from "${TIMERS_URL}";\n` +
      `unrefTimer(startTimer(() => console.log("fired"), 60_000));`,
  );
  assert.equal(released.stdout, "", released.stderr);
  assert.ok(released.ms < 30_000, `exited after ${released.ms} ms`);
});

Deno.test("these timers load none of Deno's Node layer; the global setTimeout loads node:timers", async () => {
  // Deno logs a module's name when it reads or writes its code cache (on by default).
  const env = { DENO_LOG: "deno::module_loader=debug" };
  const ours = await runScript(
    `import { startInterval, startTimer, stopTimer } from "${TIMERS_URL}";\n` +
      `const every = startInterval(() => {}, 1); startTimer(() => stopTimer(every), 20);`,
    env,
  );
  assert.doesNotMatch(ours.stderr, /ES module: (node:|ext:deno_node\/)/);
  const global = await runScript(`setTimeout(() => {}, 1);`, env);
  assert.match(global.stderr, /ES module: node:timers,/, "the check sees the Node layer load");
});

Deno.test("every timer in lib/ goes through lib/timers.ts", async () => {
  const offenders = await findInLib(
    (line) => /(?<![\w.])(setTimeout|setInterval|clearTimeout|clearInterval)\(|Deno\.unrefTimer\(/.test(line),
    // timers.ts is the one place; the dashboard's assets are the browser's script, sent as text.
    ["timers.ts", "dashboard/assets.ts"],
  );
  assert.deepEqual(
    offenders,
    [],
    "use startTimer, startInterval, stopTimer and unrefTimer from lib/timers.ts",
  );
});
