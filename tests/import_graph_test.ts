// The main isolate's module graph stays free of what brings up Deno's Node layer: any npm package or node:
// module. Measured (DEVELOPERS.md): yaml +10.8, node:net +5, node:crypto +4, node:path +0.5 MiB of idle RSS
// for the life of the process. The ACME worker (lib/acme/worker.ts) is not checked: it lives for a job. A
// module listed in NODE_ON_PURPOSE loads the Node layer for the configs that need it, and only through
// `await import()`; what only it reaches is left out of the check.

import assert from "node:assert/strict";

/** Entry points of the main isolate: main.ts and what lib/ imports with `await import()` when configured. */
const ENTRIES = [
  "main.ts",
  "lib/server/internal_issuer.ts",
  "lib/acme/supervisor.ts",
  "lib/acme/ari_client.ts",
  "lib/server/admin_start.ts",
  "lib/demo.ts",
  "lib/certs_report.ts",
  "lib/trust.ts",
  "lib/access/rules.ts",
  "lib/access/github_auth.ts",
  "lib/balance/balancers.ts",
  "lib/hash_password.ts",
  "lib/config/upstream_tls_files.ts",
  "lib/doctor/doctor.ts",
  "lib/doctor/report.ts",
  "lib/doctor/cloudflare.ts",
  "lib/doctor/rfc2136.ts",
  "lib/config/tsig_secret.ts",
  "lib/dns/rfc2136.ts",
  "lib/config/dns_files.ts",
  "lib/dns/cloudflare.ts",
  "lib/dns/acme_dns.ts",
  "lib/dns/lookups.ts",
  "lib/dns/exec.ts",
  "lib/doctor/dns_hooks.ts",
  "lib/cluster/shared_state.ts",
  "lib/storage/shared_store.ts",
  "lib/migrate_storage.ts",
  "lib/doctor/storage.ts",
  "lib/dashboard/dashboard.ts",
  "lib/proxy/websocket.ts",
  "lib/storage/cert_repository.ts",
];

/**
 * Lazily imported modules that bring up the Node layer on purpose, only for the configs that need them, and
 * why (each measured in DEVELOPERS.md).
 */
const NODE_ON_PURPOSE: Record<string, string> = {
  "lib/proxy/upstream_node_tls.ts": "node:tls: a client certificate or skipped verification to an upstream",
  // `nexo doctor` runs once and exits; these never load in the server.
  "lib/doctor/disk_space.ts": "nexo doctor: node:fs statfs for free disk space (Deno has none)",
};

const ROOT = new URL("..", import.meta.url);

Deno.test("every module lib/ imports lazily is an entry checked below", async () => {
  const root = ROOT.pathname;
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
    assert.ok(
      ENTRIES.includes(module) || module in NODE_ON_PURPOSE,
      `${module} is imported lazily: add it to ENTRIES`,
    );
  }
  for (const module of Object.keys(NODE_ON_PURPOSE)) assert.ok(lazy.has(module), `${module} is not lazy`);
});
Deno.test("the main isolate's modules include no npm package and no node: module", async () => {
  for (const entry of ENTRIES) {
    const graph = await moduleGraph(entry);
    // What the entry reaches without passing through a module that loads the Node layer on purpose.
    const bySpecifier = new Map(graph.modules.map((module) => [module.specifier, module]));
    const skipped = new Set(Object.keys(NODE_ON_PURPOSE).map((path) => new URL(path, ROOT).href));
    const reached = new Set<string>();
    const visit = (given: string) => {
      const specifier = graph.redirects[given] ?? given;
      if (reached.has(specifier) || skipped.has(specifier)) return;
      reached.add(specifier);
      for (const dependency of bySpecifier.get(specifier)?.dependencies ?? []) {
        if (dependency.code) visit(dependency.code.specifier);
      }
    };
    for (const root of graph.roots) visit(root);
    const heavy = graph.modules
      .filter((module) => (module.kind === "npm" || module.kind === "node") && reached.has(module.specifier))
      .map((module) => module.specifier);
    assert.deepEqual(heavy, [], `${entry} brings up the Node layer through ${heavy.join(", ")}`);
  }
});

Deno.test("main.ts's static graph holds none of the lazily imported modules", async () => {
  // A static import of one of them (from anywhere main.ts reaches) would load it at every start.
  const graph = await moduleGraph("main.ts");
  const bySpecifier = new Map(graph.modules.map((module) => [module.specifier, module]));
  const reached = new Set<string>();
  const visit = (specifier: string) => {
    if (reached.has(specifier)) return;
    reached.add(specifier);
    for (const dependency of bySpecifier.get(specifier)?.dependencies ?? []) {
      if (dependency.code && !dependency.isDynamic) visit(dependency.code.specifier);
    }
  };
  for (const root of graph.roots) visit(root);
  assert.ok(reached.size > 50, `${reached.size} modules reached: the walk found the graph`);
  const eager = [...ENTRIES.slice(1), ...Object.keys(NODE_ON_PURPOSE)].filter((path) =>
    reached.has(new URL(path, ROOT).href)
  );
  assert.deepEqual(eager, [], `imported statically, so loaded at every start: ${eager.join(", ")}`);
});

/** `deno info --json` of `entry` (a path from the repository root): every module it reaches, and how. */
async function moduleGraph(entry: string): Promise<{
  roots: string[];
  redirects: Record<string, string>;
  modules: Array<{
    specifier: string;
    kind: string;
    dependencies?: Array<{ isDynamic?: boolean; code?: { specifier: string } }>;
  }>;
}> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(output.success, new TextDecoder().decode(output.stderr));
  return JSON.parse(new TextDecoder().decode(output.stdout));
}
