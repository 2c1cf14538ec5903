import assert from "node:assert/strict";
import { join } from "node:path";
import type { ConfigError } from "./errors.ts";
import { loadConfig, parseConfig } from "./parse.ts";
import { issuesOf } from "./test_helpers.ts";

const FILE = "/srv/nexo/config.yaml";
const messages = (yaml: string) => issuesOf(yaml, FILE).map((issue) => issue.message).join("\n");

Deno.test("parseConfig() reads storage.redis with its default prefix, and no storage: as null", () => {
  const config = parseConfig(
    `storage:\n  redis:\n    url: redis://10.0.0.5:6379/2\n    password_file: redis.pass\n` +
      `  encryption_key_file: /etc/nexo/storage.key\n`,
    FILE,
  );
  assert.deepEqual({ ...config.storage, position: undefined }, {
    redis: {
      url: "redis://10.0.0.5:6379/2",
      prefix: "nexo",
      passwordFile: "/srv/nexo/redis.pass",
      caCert: null,
    },
    encryptionKeyFile: "/etc/nexo/storage.key",
    position: undefined,
  });
  assert.equal(config.storage?.position.line, 1);
  assert.equal(parseConfig("email: a@example.com\n", FILE).storage, null);
  const tls = parseConfig(
    `storage: { redis: { url: "rediss://redis.internal", prefix: eu-1, ca_cert: ca.pem } }\n`,
    FILE,
  );
  assert.equal(tls.storage?.redis.prefix, "eu-1");
  assert.equal(tls.storage?.redis.caCert, "/srv/nexo/ca.pem");
});

Deno.test("parseConfig() names each storage: mistake with its fix", () => {
  assert.match(messages("storage:\n  encryption_key_file: k\n"), /storage\.redis is required/);
  assert.match(
    messages("storage:\n  redis:\n    prefix: x\n"),
    /storage\.redis\.url is required, like "redis:/,
  );
  assert.match(
    messages("storage:\n  redis:\n    url: http://10.0.0.5\n"),
    /must be redis:\/\/ or rediss:\/\//,
  );
  assert.match(
    messages("storage:\n  redis:\n    url: redis://h\n    prefix: a:b\n"),
    /prefix must be 1 to 64/,
  );
  assert.match(
    messages("storage:\n  redis:\n    url: redis://h\n    ca_cert: ca.pem\n"),
    /ca_cert applies to TLS only: use a rediss:\/\/ URL/,
  );
  assert.match(
    messages("issuer: internal\nstorage:\n  redis:\n    url: redis://h\n"),
    /issuer: internal obtains none .*remove storage:, or use issuer: acme/,
  );
  assert.match(messages("storage:\n  redis:\n    url: redis://h\n    passwd: x\n"), /passwd/);
  assert.match(messages("prefix: nexo\n"), /belongs in storage\.redis:/);
});

Deno.test("parseConfig() never quotes a password written in storage.redis.url", () => {
  const text = messages("storage:\n  redis:\n    url: redis://:S3cretPassw0rd@h:99999/x\n");
  assert.match(text, /storage\.redis\.url/);
  assert.doesNotMatch(text, /S3cretPassw0rd/);
});

Deno.test("loadConfig() reads storage:'s files: a missing password file or a bad key is an error at its block", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "config.yaml");
    const base = `base_dir: ${dir}\nstorage:\n  redis:\n    url: redis://127.0.0.1:6379\n`;
    await Deno.writeTextFile(file, base + "    password_file: redis.pass\n");
    await assert.rejects(loadConfig(file), (error: ConfigError) => {
      assert.match(
        error.message,
        /config\.yaml:2:1: storage: Cannot read .*redis\.pass \(storage\.redis\.password_file\)/,
      );
      return true;
    });
    await Deno.writeTextFile(join(dir, "redis.pass"), "two words\n");
    await assert.rejects(loadConfig(file), /on one line, without blanks/);
    await Deno.writeTextFile(join(dir, "redis.pass"), "s3cret\n");
    assert.equal((await loadConfig(file)).storage?.redis.passwordFile, join(dir, "redis.pass"));
    await Deno.writeTextFile(file, base + "  encryption_key_file: storage.key\n");
    await Deno.writeTextFile(join(dir, "storage.key"), "not-a-key-at-all\n");
    await assert.rejects(loadConfig(file), (error: ConfigError) => {
      assert.match(error.message, /storage\.key .*openssl rand -base64 32/);
      assert.doesNotMatch(error.message, /not-a-key-at-all/);
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
