import assert from "node:assert/strict";
import { join } from "node:path";
import { findExposedSecretFiles, formatMode } from "./file_mode.ts";
import { loadConfig } from "./parse.ts";
import { makeTestPki } from "../../tests/test_pki.ts";

const TOKEN = "cf-test-token-0123456789abcdef";
const WITH_TOKEN = `issuer: internal\ncloudflare:\n  api_token: ${TOKEN}\n`;

/** Writes `text` to `dir/name` with `mode` (set after writing, so the umask does not matter). */
async function writeConfig(dir: string, name: string, text: string, mode: number): Promise<string> {
  const file = join(dir, name);
  await Deno.writeTextFile(file, text);
  await Deno.chmod(file, mode);
  return file;
}

Deno.test("findExposedSecretFiles() flags a config holding the token that group or others can read", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const mode of [0o644, 0o640, 0o604, 0o666]) {
      const file = await writeConfig(dir, "config.yaml", WITH_TOKEN, mode);
      const found = await findExposedSecretFiles(await loadConfig(file));
      assert.deepEqual(found, [
        { file, mode, secret: "cloudflare.api_token", fix: `chmod 600 ${file}` },
      ], formatMode(mode));
      assert.ok(!JSON.stringify(found).includes(TOKEN), "the finding never carries the token");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("findExposedSecretFiles() names GitHub's client secret too", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const secret = "gh-client-secret-0123456789";
    const github = `auth:\n  host: auth.test\n  github: { client_id: a, client_secret: ${secret} }\n`;
    const file = await writeConfig(dir, "config.yaml", WITH_TOKEN + github, 0o644);
    const found = await findExposedSecretFiles(await loadConfig(file));
    assert.deepEqual(found.map((f) => f.secret), ["cloudflare.api_token", "auth.github.client_secret"]);
    assert.ok(!JSON.stringify(found).includes(secret));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("findExposedSecretFiles() accepts owner-only modes and configs without a token", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const mode of [0o600, 0o400, 0o700]) {
      const file = await writeConfig(dir, "config.yaml", WITH_TOKEN, mode);
      assert.deepEqual(await findExposedSecretFiles(await loadConfig(file)), [], formatMode(mode));
    }
    const open = await writeConfig(dir, "open.yaml", "issuer: internal\n", 0o644);
    assert.deepEqual(await findExposedSecretFiles(await loadConfig(open)), [], "no secret, nothing to hide");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("findExposedSecretFiles() judges a symlinked config by its target and quotes odd paths", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // A Kubernetes or Docker mount: config.yaml is a symlink into a directory that is swapped on update.
    const target = await writeConfig(dir, "data file.yaml", WITH_TOKEN, 0o644);
    const link = join(dir, "config.yaml");
    await Deno.symlink(target, link);
    const [found] = await findExposedSecretFiles(await loadConfig(link));
    assert.equal(found?.file, link);
    assert.equal(found?.mode, 0o644);
    await Deno.chmod(target, 0o600);
    assert.deepEqual(await findExposedSecretFiles(await loadConfig(link)), []);
    await Deno.chmod(target, 0o644);
    const spaced = await findExposedSecretFiles(await loadConfig(target));
    assert.equal(spaced[0]?.fix, `chmod 600 '${target}'`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("findExposedSecretFiles() names an upstream client key that others can read", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const pki = await makeTestPki(dir);
    const tls = `{ client_cert_file: ${pki.clientCert}, client_key_file: ${pki.clientKey} }`;
    const file = await writeConfig(
      dir,
      "config.yaml",
      `proxies:\n  "a.test":\n    upstream: https://10.0.0.5\n    upstream_tls: ${tls}\n`,
      0o644,
    );
    await Deno.chmod(pki.clientKey, 0o640);
    const found = await findExposedSecretFiles(await loadConfig(file));
    assert.deepEqual(found, [{
      file: pki.clientKey,
      mode: 0o640,
      secret: `proxies."a.test".upstream_tls.client_key_file`,
      fix: `chmod 600 ${pki.clientKey}`,
    }], "the config itself holds no secret");
    await Deno.chmod(pki.clientKey, 0o600);
    assert.deepEqual(await findExposedSecretFiles(await loadConfig(file)), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("formatMode() writes permission bits the way chmod takes them", () => {
  assert.equal(formatMode(0o644), "0644");
  assert.equal(formatMode(0o100600), "0600");
  assert.equal(formatMode(0o4755), "04755");
  assert.equal(formatMode(0o7), "0007");
});
