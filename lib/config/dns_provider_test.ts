import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigError } from "./errors.ts";
import { loadConfig, parseConfig } from "./parse.ts";
import { cloudflareOf, execOf, issuesOf, rfc2136Of } from "./test_helpers.ts";

const FILE = "/srv/nexo/config.yaml";
const messages = (yaml: string) => issuesOf(yaml, FILE).map((issue) => issue.message);
const RFC2136 = `dns:\n  provider: rfc2136\n  rfc2136:\n    server: 203.0.113.53\n    tsig_key: nexo\n` +
  `    tsig_secret_file: tsig.key\n`;

Deno.test("parseConfig() reads dns: { provider: rfc2136 } with its defaults", () => {
  const config = parseConfig(RFC2136 + `wildcards: ["*.example.com"]\n`, FILE);
  assert.deepEqual({ ...rfc2136Of(config), position: undefined }, {
    server: { hostname: "203.0.113.53", port: 53 },
    tsigKey: "nexo",
    tsigSecretFile: "/srv/nexo/tsig.key",
    tsigAlgorithm: "hmac-sha256",
    zone: null,
    position: undefined,
  });
  assert.equal(rfc2136Of(config)?.position.line, 6);
  assert.equal(cloudflareOf(config), null);
  const v6 = parseConfig(
    RFC2136.replace("203.0.113.53", `"[2001:db8::53]:5353"`) + "    zone: Example.COM.\n",
    FILE,
  );
  assert.deepEqual(rfc2136Of(v6)?.server, { hostname: "2001:db8::53", port: 5353 });
  assert.equal(rfc2136Of(v6)?.zone, "example.com");
});

Deno.test("parseConfig() takes dns: { provider: cloudflare } as the cloudflare: block, and refuses both", () => {
  const config = parseConfig(
    "dns:\n  provider: cloudflare\n  cloudflare:\n    api_token: abcdef123456\n",
    FILE,
  );
  assert.equal(cloudflareOf(config)?.apiToken, "abcdef123456");
  assert.equal(rfc2136Of(config), null);
  assert.match(
    messages("cloudflare:\n  api_token: abcdef123456\n" + RFC2136).join("\n"),
    /cloudflare: and dns: both name a DNS provider: keep one/,
  );
});

Deno.test("parseConfig() names what is wrong in dns:, at its line", () => {
  assert.deepEqual(messages("dns:\n  provider: exec\n"), [
    "dns.provider is exec, so dns.exec needs its settings",
  ]);
  assert.deepEqual(messages("dns:\n  provider: rfc2316\n  rfc2136: {}\n"), [
    `dns.provider must be rfc2136, cloudflare, exec or acme-dns: got "rfc2316" (did you mean "rfc2136"?)`,
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
    assert.equal(rfc2136Of(await loadConfig(file))?.tsigKey, "nexo");
    await Deno.writeTextFile(join(dir, "tsig.key"), secret + "\n");
    assert.equal(rfc2136Of(await loadConfig(file))?.tsigSecretFile, join(dir, "tsig.key"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parseConfig() reads dns: { provider: exec } with lego's keys, the program an absolute path", () => {
  const config = parseConfig(
    "dns:\n  provider: exec\n  exec: { command: [/etc/nexo/dns-hook, --zone-file, db.example], timeout: 90s }\n",
    FILE,
  );
  assert.deepEqual({ ...config.dns?.default, exec: { ...execOf(config), position: undefined } }, {
    provider: "exec",
    exec: {
      command: ["/etc/nexo/dns-hook", "--zone-file", "db.example"],
      timeoutMs: 90_000,
      zone: null,
      position: undefined,
    },
  });
  assert.equal(
    execOf(parseConfig("dns:\n  provider: exec\n  exec: { command: /opt/hook }\n", FILE))?.timeoutMs,
    60_000,
  );
  assert.deepEqual(messages("dns:\n  provider: exec\n  exec: { command: [dns-hook.sh] }\n"), [
    `dns.exec.command must start with the program's absolute path (nexo may run exactly that file), got ` +
    `"dns-hook.sh" (like "/srv/nexo/dns-hook.sh")`,
  ]);
  assert.match(
    messages("dns:\n  provider: exec\n  exec: { timeout: 5s }\n").join(),
    /dns\.exec\.command is required/,
  );
  assert.match(
    messages("dns:\n  provider: exec\n  exec: { command: [/x], timeout: soon }\n").join(),
    /dns\.exec\.timeout/,
  );
});

Deno.test("parseConfig() reads dns: { provider: acme-dns } and names what is missing", () => {
  const block = "dns:\n  provider: acme-dns\n  acme_dns:\n    api: https://auth.example.org/\n" +
    "    username: eabcdb41-d89f-4580-826f-3e62e9755ef2\n    password_file: acme-dns.pass\n" +
    "    subdomain: D420C923-bbd7-4056-ab64-c3ca54c9b3cf\n";
  const provider = parseConfig(block, FILE).dns?.default;
  assert.ok(provider?.provider === "acme-dns");
  assert.deepEqual({ ...provider.acmeDns, position: undefined }, {
    api: "https://auth.example.org",
    username: "eabcdb41-d89f-4580-826f-3e62e9755ef2",
    passwordFile: "/srv/nexo/acme-dns.pass",
    subdomain: "d420c923-bbd7-4056-ab64-c3ca54c9b3cf",
    fulldomain: null,
    position: undefined,
  });
  assert.match(messages(block.replace(/ {4}username.*\n/, "")).join(), /dns\.acme_dns\.username is required/);
  assert.match(
    messages(block.replace("https://auth.example.org/", "auth.example.org")).join(),
    /dns\.acme_dns\.api must be an http\(s\) URL/,
  );
  assert.match(
    messages(block + "    fulldomain: other.auth.example.org\n").join(),
    /fulldomain must start with the subdomain/,
  );
  // The spelling of the key is accepted as the provider's name too.
  assert.equal(
    parseConfig(block.replace("provider: acme-dns", "provider: acme_dns"), FILE).dns?.default?.provider,
    "acme-dns",
  );
});

Deno.test("parseConfig() reads dns.zones: a provider per zone, longest zone first, with or without a default", () => {
  const config = parseConfig(
    RFC2136 +
      "  zones:\n" +
      '    "example.org": { provider: exec, exec: { command: [/etc/nexo/dns-hook] } }\n' +
      '    "Lab.Example.ORG.": { provider: cloudflare, cloudflare: { api_token: abcdef123456 } }\n',
    FILE,
  );
  assert.equal(config.dns?.default?.provider, "rfc2136");
  assert.deepEqual(config.dns?.zones.map((z) => [z.zone, z.provider.provider]), [
    ["lab.example.org", "cloudflare"],
    ["example.org", "exec"],
  ]);
  const zonesOnly = parseConfig(
    "dns:\n  zones:\n    example.org: { provider: exec, exec: { command: [/hook] } }\n" +
      `wildcards: ["*.example.org"]\n`,
    FILE,
  );
  assert.equal(zonesOnly.dns?.default, null);
  // A wildcard outside every zone cannot be issued without a default provider.
  assert.match(
    messages(
      "dns:\n  zones:\n    example.org: { provider: exec, exec: { command: [/hook] } }\n" +
        `wildcards: ["*.example.net"]\n`,
    ).join(),
    /no dns\.zones entry covers \*\.example\.net: add its zone to dns\.zones/,
  );
  assert.match(
    messages(
      "dns:\n  zones:\n    example.org: { provider: exec, exec: { command: [/hook] } }\n" +
        "    EXAMPLE.org: { provider: exec, exec: { command: [/hook] } }\n",
    ).join(),
    /names the zone example\.org again/,
  );
  assert.match(
    messages("dns:\n  zones:\n    example.org: { provider: exec }\n").join(),
    /dns\.zones\.example\.org\.provider is exec, so dns\.zones\.example\.org\.exec needs its settings|needs its settings/,
  );
  assert.match(
    messages('dns:\n  zones:\n    "exa mple.org": { provider: exec, exec: { command: [/hook] } }\n').join(),
    /a zone is a domain/,
  );
});

Deno.test("parseConfig() refuses a host an acme-dns zone entry could never prove", () => {
  const zone = "dns:\n  zones:\n    example.net:\n      provider: acme-dns\n      acme_dns: " +
    "{ api: https://auth.example.org, username: u, password_file: p, subdomain: d420c923 }\n";
  const hosts = (names: string[]) =>
    "proxies:\n" + names.map((name) => `  "${name}": { upstream: "http://127.0.0.1:9" }\n`).join("");
  // The zone's own name, and hosts under its wildcard, share the account's _acme-challenge name.
  parseConfig(zone + `wildcards: ["*.example.net"]\n` + hosts(["example.net", "app.example.net"]), FILE);
  assert.match(
    messages(zone + hosts(["example.net", "www.example.net"])).join(),
    /dns\.zones\."example\.net" is an acme-dns account, which answers only _acme-challenge\.example\.net .*www\.example\.net need their own dns\.zones entries/,
  );
});
