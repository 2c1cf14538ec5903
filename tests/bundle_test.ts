// The bundle nexo ships as (`deno task build` -> dist/): the tasks that run nexo build it first and run it,
// it keeps every lazily imported module out of what loads at start, its ACME worker is where the supervisor
// looks for it, and its stack traces name the TypeScript sources. The end-to-end tests run it
// (tests/harness.ts), so serving, issuing and every command are checked on this form.

import assert from "node:assert/strict";
import { bundledMain } from "./bundle.ts";

const ROOT = new URL("..", import.meta.url).pathname;

Deno.test("deno.json's nexo, demo and compile tasks build the bundle, then run dist/main.js", async () => {
  const tasks = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`)).tasks as Record<string, string>;
  for (const task of ["nexo", "demo", "compile"]) {
    const [build, run] = tasks[task]!.split(" && ");
    assert.equal(build, "deno task --quiet build", task);
    assert.match(run!, /\sdist\/main\.js( demo)?$/, task);
  }
  // The compiled binary carries the whole of dist/: the chunks main.js imports lazily and the worker.
  assert.match(tasks.compile!, /\s--include dist\s/);
});

Deno.test("the bundle loads at start only what every config runs; each lazy module is a file of its own", async () => {
  const dist = (await bundledMain()).replace(/main\.js$/, "");
  // esbuild names a chunk that a dynamic import() starts after its module (admin-XXXXXXXX.js), and the
  // chunks several entries share "chunk-XXXXXXXX.js".
  const files = [...Deno.readDirSync(dist)].map((entry) => entry.name).filter((name) => name.endsWith(".js"));
  const lazy = files.filter((name) =>
    /^[a-z_0-9]+-[A-Z0-9]{8}\.js$/.test(name) && !name.startsWith("chunk-")
  );
  for (const module of ["supervisor", "internal_issuer", "admin_start", "websocket", "dashboard", "doctor"]) {
    assert.ok(lazy.some((name) => name.startsWith(`${module}-`)), `${module} is not a chunk of its own`);
  }
  // What main.js loads before it runs: its static imports, transitively.
  const loaded = new Set<string>();
  const visit = (name: string) => {
    if (loaded.has(name)) return;
    loaded.add(name);
    const text = Deno.readTextFileSync(`${dist}${name}`);
    for (const match of text.matchAll(/(?:^|[;}\s])import\s*(?:[^"'();]*?from\s*)?"\.\/([^"]+)"/g)) {
      visit(match[1]!);
    }
  };
  visit("main.js");
  assert.ok(loaded.size > 5, `main.js imports ${[...loaded].join(", ")}: the walk found its imports`);
  const eager = lazy.filter((name) => loaded.has(name));
  assert.deepEqual(eager, [], `loaded at every start: ${eager.join(", ")}`);
  // Minified, with its source maps in files of their own (read only to print a stack trace).
  const main = await Deno.readTextFile(`${dist}main.js`);
  assert.ok(!main.includes("sourceMappingURL=data:"), "no inline source map");
  assert.match(main, /\/\/# sourceMappingURL=main\.js\.map\n?$/);
  assert.ok((await Deno.stat(`${dist}acme_worker.js`)).isFile, "the ACME worker, bundled on its own");
  // The supervisor's chunk names the worker's file (lib/acme/supervisor.ts, defaultWorkerUrl).
  const supervisor = lazy.find((name) => name.startsWith("supervisor-"))!;
  assert.ok(Deno.readTextFileSync(`${dist}${supervisor}`).includes('"./acme_worker.js"'));
});

Deno.test("a stack trace from the bundle names the TypeScript source and line", async () => {
  // Imports the chunk that holds lib/config/errors.ts and makes its ConfigError throw (it refuses an empty
  // list of issues): the top frame must read as errors.ts, not as the minified chunk.
  const dist = (await bundledMain()).replace(/main\.js$/, "");
  const chunks = [...Deno.readDirSync(dist)].map((entry) => entry.name).filter((name) =>
    name.endsWith(".js")
  );
  const owner = chunks.find((name) => Deno.readTextFileSync(`${dist}${name}`).includes("ConfigError needs"));
  assert.ok(owner, "a chunk holds lib/config/errors.ts");
  const probe = `${dist}stack_probe.js`;
  await Deno.writeTextFile(
    probe,
    `import * as chunk from "./${owner}";\n` +
      // Minified: the class is found by its code, not its name.
      `const ConfigError = Object.values(chunk).find((value) => String(value).includes("ConfigError needs"));\n` +
      `try { new ConfigError([]); } catch (error) { console.log(error.stack); }\n`,
  );
  try {
    const output = await new Deno.Command(Deno.execPath(), { args: ["run", probe], stdout: "piped" })
      .output();
    const stack = new TextDecoder().decode(output.stdout);
    assert.match(stack, /TypeError: ConfigError needs at least one issue/, stack);
    assert.match(stack, /lib\/config\/errors\.ts:\d+:\d+/, `the stack names minified code:\n${stack}`);
  } finally {
    await Deno.remove(probe);
  }
});
