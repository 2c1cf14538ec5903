import assert from "node:assert/strict";
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
