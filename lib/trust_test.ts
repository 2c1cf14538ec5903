import assert from "node:assert/strict";
import { parseConfig } from "./config/parse.ts";
import { rootLabels, trustCommand } from "./trust.ts";

const internal = (dir: string) =>
  parseConfig(
    `base_dir: ${dir}\nissuer: internal\nproxies:\n  "a.localhost":\n    upstream: http://127.0.0.1:9\n`,
    "c.yaml",
  );

Deno.test("trustCommand() refuses a config whose certificates come from an ACME CA", async () => {
  const config = parseConfig(
    `email: a@example.com\ncloudflare:\n  api_token: t\nproxies:\n  "a.example.com":\n    upstream: http://127.0.0.1:9\n`,
    "c.yaml",
  );
  const said = await trustCommand("trust", config, "nss", "/nonexistent");
  assert.equal(said.code, 1);
  assert.match(said.text, /c\.yaml: issuer is acme, .*nexo trust is for issuer: internal/);
});

Deno.test("trustCommand() names the stores --stores takes", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const said = await trustCommand("trust", internal(dir), "system,firefox", dir);
    assert.equal(said.code, 1);
    assert.equal(said.text, "error: --stores takes system,nss (comma-separated), got 'firefox'\n");
    // Nothing was created for a refused command.
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("trustCommand() untrust without a local CA has nothing to remove and creates none", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const said = await trustCommand("untrust", internal(dir), "nss", dir);
    assert.deepEqual(said, { code: 0, text: `No local CA at ${dir}/ca/root.crt: nothing to remove.\n` });
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("rootLabels() gives each root its own nickname and file name", async () => {
  const { LocalCa, localCaRootPath } = await import("./tls/local_ca.ts");
  const [a, b] = [await Deno.makeTempDir(), await Deno.makeTempDir()];
  try {
    await LocalCa.loadOrCreate(a);
    await LocalCa.loadOrCreate(b);
    const la = await rootLabels(await Deno.readTextFile(localCaRootPath(a)));
    const lb = await rootLabels(await Deno.readTextFile(localCaRootPath(b)));
    assert.match(la.nickname, /^nexo local CA [0-9a-f]{16}$/);
    assert.match(la.fileName, /^nexo-local-ca-[0-9a-f]{16}\.crt$/);
    assert.notEqual(la.nickname, lb.nickname);
    assert.notEqual(la.fileName, lb.fileName);
  } finally {
    await Deno.remove(a, { recursive: true });
    await Deno.remove(b, { recursive: true });
  }
});
