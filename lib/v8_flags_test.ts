import assert from "node:assert/strict";
import { canCollect, noteStreamed, STREAM_GC_BYTES } from "./stream_gc.ts";
import { DENO_LOG_FILTER, MALLOC_ENV, NO_CODE_CACHE, V8_FLAGS } from "./v8_flags.ts";

Deno.test("deno.json's nexo, demo and compile tasks pass the V8 flags nexo is tuned with, and no code cache", async () => {
  const denoJson = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  // `deno task start` is `nexo server`, with the same flags.
  assert.equal(denoJson.tasks.start, "deno task nexo server");
  for (const task of ["nexo", "demo", "compile"]) {
    const args = (denoJson.tasks[task] as string).split(/\s+/);
    assert.ok(args.includes(V8_FLAGS), `task ${task}: ${V8_FLAGS}`);
    assert.ok(args.includes(NO_CODE_CACHE), `task ${task}: ${NO_CODE_CACHE}`);
  }
});

Deno.test("deno.json's tasks, the Dockerfile, the systemd unit and the launcher set DENO_LOG and MALLOC_ARENA_MAX", async () => {
  const read = (path: string) => Deno.readTextFile(new URL(`../${path}`, import.meta.url));
  const malloc = Object.entries(MALLOC_ENV).map(([name, value]) => `${name}=${value}`).join(" ");
  const denoJson = JSON.parse(await read("deno.json"));
  for (const task of ["nexo", "demo"]) {
    // After the build of the bundle they run (tests/bundle_test.ts).
    const run = (denoJson.tasks[task] as string).split(" && ").at(-1)!;
    assert.ok(run.startsWith(`DENO_LOG=${DENO_LOG_FILTER} ${malloc} deno run `), task);
  }
  const dockerfile = await read("Dockerfile");
  const env = dockerfile.split("\n").filter((line) => line.startsWith("ENV ")).flatMap((line) =>
    line.split(/\s+/)
  );
  assert.ok(env.includes(`DENO_LOG=${DENO_LOG_FILTER}`), "Dockerfile: ENV DENO_LOG");
  for (const [name, value] of Object.entries(MALLOC_ENV)) {
    assert.ok(env.includes(`${name}=${value}`), `Dockerfile: ENV ${name}`);
    assert.match(await read("examples/nexo.service"), new RegExp(`^Environment=${name}=${value}$`, "m"));
    assert.match(
      await read("scripts/install.sh"),
      new RegExp(`^export ${name}="\\\\\\$\\{${name}:-${value}\\}"$`, "m"),
    );
  }
});

Deno.test("stream_gc runs minor GCs only when V8 exposes gc, and they free streamed buffers", async () => {
  // This test process runs without the flags: noteStreamed is a no-op.
  assert.equal(canCollect, false);
  noteStreamed(STREAM_GC_BYTES * 2);
  // With them, a child streaming 256 MiB of fresh 64 KiB buffers through noteStreamed keeps its memory
  // outside the heap small; without the GC calls it climbs to tens of MiB before V8 collects on its own.
  const child = `
    import { canCollect, noteStreamed } from ${
    JSON.stringify(new URL("./stream_gc.ts", import.meta.url).href)
  };
    let peak = 0;
    for (let i = 0; i < 4096; i++) {
      const chunk = new Uint8Array(64 * 1024);
      chunk[0] = i;
      noteStreamed(chunk.byteLength);
      peak = Math.max(peak, Deno.memoryUsage().external);
    }
    console.log(JSON.stringify({ canCollect, peakMiB: peak / 1048576 }));
  `;
  type Result = { canCollect: boolean; peakMiB: number };
  const tuned = await evalJson<Result>([V8_FLAGS], child);
  const plain = await evalJson<Result>([], child);
  assert.equal(tuned.canCollect, true);
  assert.equal(plain.canCollect, false);
  assert.ok(tuned.peakMiB < 16, `with minor GCs the external memory peaked at ${tuned.peakMiB} MiB`);
  assert.ok(plain.peakMiB > tuned.peakMiB * 2, `without: ${plain.peakMiB} MiB, with: ${tuned.peakMiB} MiB`);
});

Deno.test("with nexo's V8 flags a terminated worker's heap goes back to the OS (the ACME worker per job)", async () => {
  // A worker fills ~32 MiB of JS heap and is terminated; the child reports how much of its anonymous memory
  // the worker left behind. Without --no-memory-pool-share-memory-on-teardown V8 15 keeps the pages pooled.
  const child = `
    const anonMiB = () =>
      Number(/^Anonymous:\\s+(\\d+)/m.exec(Deno.readTextFileSync("/proc/self/smaps_rollup"))[1]) / 1024;
    const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
    await sleep(300);
    const before = anonMiB();
    const source = "self.keep = Array.from({ length: 400000 }, (_, i) => ({ i, s: 'x' + i })); postMessage(1);";
    const worker = new Worker(URL.createObjectURL(new Blob([source])), { type: "module" });
    await new Promise((resolve) => worker.onmessage = resolve);
    worker.terminate();
    await sleep(1000);
    console.log(JSON.stringify({ leftMiB: anonMiB() - before }));
  `;
  const tuned = (await evalJson<{ leftMiB: number }>([V8_FLAGS], child)).leftMiB;
  const plain = (await evalJson<{ leftMiB: number }>([], child)).leftMiB;
  assert.ok(tuned < 8, `with the flags the worker left ${tuned.toFixed(1)} MiB`);
  assert.ok(plain > tuned + 10, `without: ${plain.toFixed(1)} MiB left, with: ${tuned.toFixed(1)} MiB`);
});

/** Runs `source` with `deno eval` and `flags` in a child process; returns the JSON it printed. */
async function evalJson<T>(flags: string[], source: string): Promise<T> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["eval", ...flags, source],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  return JSON.parse(new TextDecoder().decode(output.stdout)) as T;
}
