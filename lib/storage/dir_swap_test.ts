import assert from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";
import { recoverDirectory, replaceDirectory, swapNames, swapOwner } from "./dir_swap.ts";
import { MemoryStorage } from "./memory_storage.ts";
import { loadText, type Storage } from "./storage.ts";
import { CrashingStorage, SimulatedCrash } from "./testdata/crashing_storage.ts";

const OLD = { "privkey.pem": "old key", "fullchain.pem": "old chain", "meta.json": "old meta" };
const NEW = { "privkey.pem": "new key", "fullchain.pem": "new chain", "meta.json": "new meta" };

function filesOf(set: Record<string, string>) {
  return Object.entries(set).map(([name, value]) => ({ name, value, private: name === "privkey.pem" }));
}

/** The files of `dir` as a name -> text map. */
async function readSet(storage: Storage, dir: string): Promise<Record<string, string>> {
  const set: Record<string, string> = {};
  for (const name of await storage.list(dir)) set[name] = await loadText(storage, `${dir}/${name}`) ?? "";
  return set;
}

Deno.test("swapNames() puts the staging and old sets in hidden siblings and the committed one in X+next", () => {
  assert.deepEqual(swapNames("example.com"), {
    staging: ".example.com+new",
    next: "example.com+next",
    old: ".example.com+old",
  });
  assert.deepEqual(swapNames("certs/a.example"), {
    staging: "certs/.a.example+new",
    next: "certs/a.example+next",
    old: "certs/.a.example+old",
  });
});

Deno.test("swapOwner() maps each swap sibling back to its directory and ignores everything else", () => {
  assert.equal(swapOwner("example.com+next"), "example.com");
  assert.equal(swapOwner(".example.com+new"), "example.com");
  assert.equal(swapOwner(".wildcard_.example.com+old"), "wildcard_.example.com");
  assert.equal(swapOwner("example.com"), undefined);
  assert.equal(swapOwner(".example.com+pending"), undefined);
  assert.equal(swapOwner(".locks"), undefined);
});

Deno.test("replaceDirectory() leaves exactly the new files, dropping old ones not in the new set", async () => {
  const storage = new MemoryStorage();
  await replaceDirectory(storage, { dir: "site", files: filesOf({ ...OLD, "stray.txt": "x" }) });
  await replaceDirectory(storage, { dir: "site", files: filesOf(NEW) });
  assert.deepEqual(await readSet(storage, "site"), NEW);
  assert.deepEqual(await storage.list(""), ["site"]);
  assert.equal(storage.isPrivate("site/privkey.pem"), true);
});

Deno.test("replaceDirectory() crashed at any write leaves every visible directory wholly old or wholly new", async () => {
  const counting = new CrashingStorage(new MemoryStorage(), Infinity);
  await replaceDirectory(counting, { dir: "site", files: filesOf(OLD) });
  const before = counting.writes.length;
  await replaceDirectory(counting, { dir: "site", files: filesOf(NEW) });
  const steps = counting.writes.slice(before);
  const commit = steps.indexOf("rename .site+new -> site+next");
  assert.ok(commit > 0, `the commit is one of the steps: ${steps.join("; ")}`);

  for (let crashAt = 0; crashAt <= steps.length; crashAt++) {
    const disk = new MemoryStorage();
    await replaceDirectory(disk, { dir: "site", files: filesOf(OLD) });
    const crashing = new CrashingStorage(disk, crashAt);
    const saving = replaceDirectory(crashing, { dir: "site", files: filesOf(NEW) });
    if (crashAt < steps.length) await assert.rejects(saving, SimulatedCrash);
    else await saving;

    const visible = (await disk.list("")).filter((name) => !name.startsWith("."));
    assert.ok(visible.length > 0, `crash at ${crashAt}: something is visible`);
    const committed = crashAt > commit;
    for (const dir of visible) {
      const set = await readSet(disk, dir);
      assert.ok(
        isDeepStrictEqual(set, OLD) || isDeepStrictEqual(set, NEW),
        `crash at ${crashAt} (${steps[crashAt]}): ${dir} holds a mix: ${JSON.stringify(set)}`,
      );
    }
    const expected = committed ? NEW : OLD;
    const outcome = await recoverDirectory(disk, "site");
    assert.equal(
      outcome === "rolled-forward",
      committed && crashAt < steps.length - 1,
      `crash at ${crashAt}`,
    );
    assert.deepEqual(await disk.list(""), ["site"], `crash at ${crashAt}: only the directory is left`);
    assert.deepEqual(await readSet(disk, "site"), expected, `crash at ${crashAt}`);
    assert.equal(await recoverDirectory(disk, "site"), "clean", "recovery is idempotent");
  }
});

Deno.test("recoverDirectory() deletes an uncommitted staging directory and keeps the current set", async () => {
  const storage = new MemoryStorage();
  await replaceDirectory(storage, { dir: "site", files: filesOf(OLD) });
  await storage.store(".site+new/privkey.pem", "half-written set");
  assert.equal(await recoverDirectory(storage, "site"), "cleaned");
  assert.deepEqual(await storage.list(""), ["site"]);
  assert.deepEqual(await readSet(storage, "site"), OLD);
});
