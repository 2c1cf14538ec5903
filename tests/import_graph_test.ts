// The main isolate's module graph stays free of what brings up Deno's Node layer: any npm package or node:
// module. Measured (DEVELOPERS.md): yaml +10.8, node:net +5, node:crypto +4, node:path +0.5 MiB of idle RSS
// for the life of the process. The ACME worker (lib/acme/worker.ts) is not checked: it lives for a job.

import assert from "node:assert/strict";

/** Entry points of the main isolate: main.ts and what lib/ imports with `await import()` when configured. */
const ENTRIES = [
  "main.ts",
  "lib/server/internal_issuer.ts",
  "lib/acme/supervisor.ts",
  "lib/server/admin.ts",
  "lib/demo.ts",
  "lib/certs_report.ts",
  "lib/trust.ts",
  "lib/access/rules.ts",
  "lib/access/github_auth.ts",
  "lib/balance/balancers.ts",
  "lib/hash_password.ts",
];

Deno.test("every module lib/ imports lazily is an entry checked below", async () => {
  const root = new URL("..", import.meta.url).pathname;
  const lazy = new Set<string>();
  const walk = async (dir: string) => {
    for await (const entry of Deno.readDir(`${root}${dir}`)) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory) await walk(path);
      else if (path.endsWith(".ts") && !path.endsWith("_test.ts")) {
        const text = await Deno.readTextFile(`${root}${path}`);
        for (const match of text.matchAll(/\bimport\("(\.{1,2}\/[^"]+)"\)/g)) {
          lazy.add(new URL(match[1]!, `file://${root}${path}`).pathname.slice(root.length));
        }
      }
    }
  };
  await walk("lib");
  assert.ok(lazy.size >= 6, [...lazy].join(", "));
  for (const module of lazy) {
    assert.ok(ENTRIES.includes(module), `${module} is imported lazily: add it to ENTRIES`);
  }
});
Deno.test("the main isolate's modules include no npm package and no node: module", async () => {
  for (const entry of ENTRIES) {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", entry],
      cwd: new URL("..", import.meta.url),
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(output.success, new TextDecoder().decode(output.stderr));
    const graph = JSON.parse(new TextDecoder().decode(output.stdout)) as {
      modules: Array<{ specifier: string; kind: string }>;
    };
    const heavy = graph.modules
      .filter((module) => module.kind === "npm" || module.kind === "node")
      .map((module) => module.specifier);
    assert.deepEqual(heavy, [], `${entry} brings up the Node layer through ${heavy.join(", ")}`);
  }
});
