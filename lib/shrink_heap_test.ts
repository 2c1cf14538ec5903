import assert from "node:assert/strict";
import { BurstWatch } from "./shrink_heap.ts";
import { V8_FLAGS } from "./v8_flags.ts";

/**
 * Runs a child with nexo's V8 flags that grows the young generation (objects that survive scavenges, as a
 * reload's or a job's do), then collects with `collect` and reports new space's size in MiB.
 */
async function newSpaceAfter(collect: "shrinkHeap" | "regular major GC"): Promise<number> {
  const module = new URL("./shrink_heap.ts", import.meta.url).href;
  const child = `
    import { getHeapSpaceStatistics } from "node:v8";
    import { shrinkHeap } from "${module}";
    const keep = [];
    for (let round = 0; round < 40; round++) {
      keep.push(Array.from({ length: 20000 }, (_, i) => ({ i, s: "x" + i })));
      if (keep.length > 4) keep.shift();
    }
    keep.length = 0;
    ${collect === "shrinkHeap" ? "shrinkHeap();" : 'globalThis.gc({ type: "major" });'}
    const space = getHeapSpaceStatistics().find((s) => s.space_name === "new_space");
    console.log(space.space_size / 1048576);
  `;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["eval", V8_FLAGS, child],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  return Number(new TextDecoder().decode(output.stdout).trim());
}

Deno.test("shrinkHeap() gives back the young generation a burst grew, which a regular major GC keeps", async () => {
  const regular = await newSpaceAfter("regular major GC");
  const shrunk = await newSpaceAfter("shrinkHeap");
  assert.ok(regular >= 4, `the burst should grow new space to MiBs (regular major GC left ${regular} MiB)`);
  assert.ok(
    shrunk <= regular / 4,
    `shrinkHeap() left ${shrunk} MiB of new space, a regular GC ${regular} MiB`,
  );
});

Deno.test("BurstWatch says shrink once per burst, when it is over", () => {
  const watch = new BurstWatch(0);
  assert.equal(watch.due(50), false, "quiet from the start: nothing to give back");
  assert.equal(watch.due(5_050), false, "busy: 5,000 requests since the last check");
  assert.equal(watch.due(9_050), false, "still busy");
  assert.equal(watch.due(9_100), true, "quiet after a burst");
  assert.equal(watch.due(9_110), false, "once per burst");
  assert.equal(watch.due(9_610), false, "500 requests: neither busy nor quiet");
  assert.equal(watch.due(11_000), false, "busy again");
  assert.equal(watch.due(11_500), false, "not quiet yet (500 requests)");
  assert.equal(watch.due(11_600), true, "quiet: the second burst is over");
});

Deno.test("with DENO_USR2_MEMORY_TRIM=1 shrinkHeap() hands freed malloc memory back and the process lives on", async () => {
  // The child drops ~80 MiB of small ArrayBuffers (their memory is malloc's) and shrinks twice: the GC frees
  // them, the trim a second later gives glibc's free lists back. Without a listener of nexo's own, the
  // SIGUSR2 would end the process (exit 140).
  const module = new URL("./shrink_heap.ts", import.meta.url).href;
  const script = await Deno.makeTempFile({ suffix: ".ts" });
  await Deno.writeTextFile(
    script,
    `import { shrinkHeap } from "${module}";
    const rssMiB = () => Deno.memoryUsage().rss / 1048576;
    const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
    let keep = [];
    for (let i = 0; i < 20000; i++) keep.push(new Uint8Array(4096).fill(1));
    keep = null;
    const before = rssMiB();
    shrinkHeap();
    shrinkHeap();
    await sleep(1500);
    console.log(JSON.stringify({ freedMiB: before - rssMiB() }));`,
  );
  const run = async (allowEnv: string) => {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-config", V8_FLAGS, `--allow-env=${allowEnv}`, script],
      env: { DENO_USR2_MEMORY_TRIM: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(output.code, 0, `exit ${output.code}: ${new TextDecoder().decode(output.stderr)}`);
    return (JSON.parse(new TextDecoder().decode(output.stdout)) as { freedMiB: number }).freedMiB;
  };
  try {
    const trimmed = await run("DENO_USR2_MEMORY_TRIM");
    // Not permitted to read the variable (and never a permission prompt): no signal, the GC alone.
    const unread = await run("HOME");
    assert.ok(trimmed > 40, `with the trim ${trimmed.toFixed(1)} MiB given back`);
    assert.ok(
      unread < 20,
      `without reading the variable ${unread.toFixed(1)} MiB, with it ${trimmed.toFixed(1)}`,
    );
  } finally {
    await Deno.remove(script);
  }
});
