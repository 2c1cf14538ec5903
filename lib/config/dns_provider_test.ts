import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigError } from "./errors.ts";
import { loadConfig, parseConfig } from "./parse.ts";
import { issuesOf } from "./test_helpers.ts";

const FILE = "/srv/nexo/config.yaml";
const messages = (yaml: string) => issuesOf(yaml, FILE).map((issue) => issue.message);
const RFC2136 = `dns:\n  provider: rfc2136\n  rfc2136:\n    server: 203.0.113.53\n    tsig_key: nexo\n` +
  `    tsig_secret_file: tsig.key\n`;

Deno.test("parseConfig() reads dns: { provider: rfc2136 } with its defaults", () => {
  const config = parseConfig(RFC2136 + `wildcards: ["*.example.com"]\n`, FILE);
  assert.deepEqual({ ...config.rfc2136, position: undefined }, {
    server: { hostname: "203.0.113.53", port: 53 },
    tsigKey: "nexo",
    tsigSecretFile: "/srv/nexo/tsig.key",
    tsigAlgorithm: "hmac-sha256",
    zone: null,
    position: undefined,
  });
  assert.equal(config.rfc2136?.position.line, 6);
  assert.equal(config.cloudflare, null);
  const v6 = parseConfig(
    RFC2136.replace("203.0.113.53", `"[2001:db8::53]:5353"`) + "    zone: Example.COM.\n",
    FILE,
  );
  assert.deepEqual(v6.rfc2136?.server, { hostname: "2001:db8::53", port: 5353 });
  assert.equal(v6.rfc2136?.zone, "example.com");
});

Deno.test("parseConfig() takes dns: { provider: cloudflare } as the cloudflare: block, and refuses both", () => {
  const config = parseConfig(
    "dns:\n  provider: cloudflare\n  cloudflare:\n    api_token: abcdef123456\n",
    FILE,
  );
  assert.equal(config.cloudflare?.apiToken, "abcdef123456");
  assert.equal(config.rfc2136, null);
  assert.match(
    messages("cloudflare:\n  api_token: abcdef123456\n" + RFC2136).join("\n"),
    /cloudflare: and dns: both name a DNS provider: keep one/,
  );
});

Deno.test("parseConfig() names what is wrong in dns:, at its line", () => {
  assert.deepEqual(messages("dns:\n  provider: exec\n"), [
    "dns.provider must be rfc2136 or cloudflare: the exec provider is not in this version of nexo yet",
  ]);
  assert.deepEqual(messages("dns:\n  provider: rfc2316\n  rfc2136: {}\n"), [
    `dns.provider must be rfc2136 or cloudflare: got "rfc2316" (did you mean "rfc2136"?)`,
  ]);
  assert.match(
    messages("dns:\n  provider: rfc2136\n").join(),
    /dns\.provider is rfc2136, so dns\.rfc2136 needs/,
  );
  assert.match(
    messages(RFC2136.replace("203.0.113.53", "dns.example.com")).join(),
    /dns\.rfc2136\.server must be the server's IP address/,
  );
  assert.match(
    messages(RFC2136 + "    tsig_algorithm: hmac-md5\n").join(),
    /dns\.rfc2136\.tsig_algorithm must be one of hmac-sha256, hmac-sha384, hmac-sha512, hmac-sha1/,
  );
  assert.match(
    messages(RFC2136.replace("    tsig_key: nexo\n", "")).join(),
    /dns\.rfc2136\.tsig_key is required/,
  );
  // An empty or overlong key name, or an empty dns: block, is an error, never a silently missing provider.
  assert.match(
    messages(RFC2136.replace("tsig_key: nexo", `tsig_key: ""`)).join(),
    /tsig_key must be the key's name/,
  );
  assert.match(
    messages(RFC2136.replace("tsig_key: nexo", `tsig_key: "${"k".repeat(64)}"`)).join(),
    /tsig_key must be the key's name/,
  );
  assert.match(
    messages("dns:\n" + `wildcards: ["*.example.com"]\n`).join("\n"),
    /dns: is empty: set dns\.provider/,
  );
  // Wildcards need a DNS provider, and dns: is one.
  assert.match(
    messages(`wildcards: ["*.example.com"]\n`).join(),
    /add a cloudflare: block with an api_token, or a dns: block/,
  );
});

Deno.test("loadConfig() reads the TSIG key file: missing, garbled, or disagreeing with the config is an error at its line", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nexo-tsig-" });
  try {
    const file = join(dir, "config.yaml");
    await Deno.writeTextFile(file, RFC2136);
    const issue = async () => {
      const error = await loadConfig(file).then(() => null, (e) => e);
      assert.ok(error instanceof ConfigError, String(error));
      assert.equal(error.issues[0]!.line, 6);
      return error.issues.map((i) => i.message).join("\n");
    };
    assert.match(await issue(), /tsig_secret_file: cannot read .*tsig\.key: it does not exist/);
    await Deno.writeTextFile(join(dir, "tsig.key"), "not base64 at all!");
    assert.match(await issue(), /neither a BIND key file \(tsig-keygen's output\) nor a base64 secret/);
    const secret = crypto.getRandomValues(new Uint8Array(32)).toBase64();
    await Deno.writeTextFile(
      join(dir, "tsig.key"),
      `key "other" {\n\talgorithm hmac-sha512;\n\tsecret "${secret}";\n};\n`,
    );
    const both = await issue();
    assert.match(both, /the file's key is "other" but dns\.rfc2136\.tsig_key is "nexo"/);
    assert.match(both, /the file's algorithm is hmac-sha512 but dns\.rfc2136\.tsig_algorithm is hmac-sha256/);
    assert.ok(!both.includes(secret), "the secret is never quoted");
    await Deno.writeTextFile(
      join(dir, "tsig.key"),
      `key "nexo" {\n\talgorithm hmac-sha256;\n\tsecret "${secret}";\n};\n`,
    );
    assert.equal((await loadConfig(file)).rfc2136?.tsigKey, "nexo");
    await Deno.writeTextFile(join(dir, "tsig.key"), secret + "\n");
    assert.equal((await loadConfig(file)).rfc2136?.tsigSecretFile, join(dir, "tsig.key"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
