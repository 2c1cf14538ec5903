// nexo's main isolate never loads Deno's Node compatibility layer. Each first use of a part of it (Deno
// 2.9.6's global setTimeout is Node's; node:crypto, node:net, a CommonJS npm package) keeps megabytes for
// the life of the process (docs/performance.md), and nothing in a static import graph shows a global's lazy
// load: so this runs the shipped bundle with Deno's module loader logging, through a request, a reload and
// the memory work after start-up, and reads which modules Deno loaded.

import assert from "node:assert/strict";
import { curl, startNexo } from "./harness.ts";

/** After the start-up's shrinkHeapSoon (1 s) and the trim it sends itself (1 s later), with room to spare. */
const SETTLED_MS = 3_000;

Deno.test("serving, reloading and settling load no module of Deno's Node layer", async () => {
  await using upstream = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () => new Response("up\n"),
  );
  const route = (name: string) => `  "${name}":\n    upstream: http://127.0.0.1:${upstream.addr.port}\n`;
  const nexo = await startNexo(`proxies:\n${route("localhost")}`, { moduleLog: true });
  try {
    const answer = await curl(nexo, "localhost", "/");
    assert.equal(answer.status, 200, answer.stderr);
    const config = await Deno.readTextFile(`${nexo.dir}/config.yaml`);
    await Deno.writeTextFile(`${nexo.dir}/config.yaml`, config + route("second.localhost"));
    await nexo.waitForLog((line) => line.msg === "config reloaded");
    assert.equal((await curl(nexo, "second.localhost", "/")).status, 200);
    await new Promise((resolve) => setTimeout(resolve, SETTLED_MS));
  } finally {
    await nexo.stop();
  }
  const modules = [...nexo.output().matchAll(/ES module: (\S+?),/g)].map((match) => match[1]!);
  // The logging works: Deno's HTTP server is one of the modules it loads lazily, at the first Deno.serve.
  assert.ok(modules.includes("ext:deno_http/00_serve.ts"), `modules logged: ${modules.join(" ")}`);
  const node = modules.filter((name) => name.startsWith("node:") || name.startsWith("ext:deno_node/"));
  assert.deepEqual(node, [], "Node's layer loaded");
});
