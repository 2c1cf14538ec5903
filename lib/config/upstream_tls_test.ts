import assert from "node:assert/strict";
import { ConfigError } from "./errors.ts";
import { loadConfig, parseConfig } from "./parse.ts";
import { issuesOf } from "./test_helpers.ts";
import type { ProxyRoute } from "./types.ts";
import { upstreamTlsWarnings } from "../config_warnings.ts";
import { makeTestPki, type TestPki } from "../../tests/test_pki.ts";

const FILE = "/srv/nexo/config.yaml";
const route = (body: string) => `proxies:\n  "app.example.com":\n${body}`;
const proxyOf = (body: string) => parseConfig(route(body), FILE).routes[0] as ProxyRoute;
const messages = (body: string) => issuesOf(route(body), FILE).map((i) => `${i.line}:${i.col} ${i.message}`);

Deno.test("upstream_tls is read with paths resolved against the config's directory", () => {
  const tls = proxyOf(
    "    upstream: https://10.0.0.5:8443\n" +
      "    upstream_tls:\n" +
      "      ca_file: ca.pem\n" +
      "      server_name: App.Internal\n" +
      "      client_cert_file: /etc/nexo/client.pem\n" +
      "      client_key_file: keys/client.key\n",
  ).upstreamTls;
  assert.deepEqual(tls, {
    caFile: "/srv/nexo/ca.pem",
    serverName: "app.internal",
    clientCertFile: "/etc/nexo/client.pem",
    clientKeyFile: "/srv/nexo/keys/client.key",
    insecureSkipVerify: false,
    position: { file: FILE, line: 4, col: 5 },
    material: null,
  });
  assert.equal(proxyOf("    upstream: https://a\n").upstreamTls, null);
  assert.equal(proxyOf("    upstream: https://a\n    upstream_tls: {}\n").upstreamTls, null);
  assert.equal(
    proxyOf("    upstream: https://a\n    upstream_tls: { insecure_skip_verify: true }\n").upstreamTls
      ?.insecureSkipVerify,
    true,
  );
});

Deno.test("bad upstream_tls settings are reported at their line, with the fix", () => {
  assert.deepEqual(
    messages("    upstream: [https://a, http://b:8080]\n    upstream_tls: { ca_file: ca.pem }\n"),
    [
      `4:5 proxies."app.example.com".upstream_tls applies to https:// upstreams, and http://b:8080/ is plain http://; write https:// if it speaks TLS, or remove upstream_tls`,
    ],
  );
  assert.deepEqual(messages("    upstream: https://a\n    upstream_tls: { client_cert_file: c.pem }\n"), [
    `4:21 proxies."app.example.com".upstream_tls.client_cert_file needs client_key_file too: a client certificate is presented with its private key`,
  ]);
  assert.deepEqual(messages("    upstream: https://a\n    upstream_tls: { client_key_file: k.pem }\n"), [
    `4:21 proxies."app.example.com".upstream_tls.client_key_file needs client_cert_file too: a client certificate is presented with its private key`,
  ]);
  assert.deepEqual(
    messages("    upstream: https://a\n    upstream_tls: { ca_file: ca.pem, insecure_skip_verify: true }\n"),
    [
      `4:21 proxies."app.example.com".upstream_tls.ca_file is never used with insecure_skip_verify: true, which verifies nothing; remove insecure_skip_verify to verify against the CA (the safe choice), or remove ca_file`,
    ],
  );
  assert.deepEqual(messages("    upstream: https://a\n    upstream_tls: { server_name: 10.0.0.5 }\n"), [
    `4:34 proxies."app.example.com".upstream_tls.server_name: invalid hostname "10.0.0.5": IP addresses cannot be used here; use a host name (certificates are issued for names) (the name in the upstream's certificate, like app.internal)`,
  ]);
  assert.deepEqual(messages('    upstream: https://a\n    upstream_tls: { ca_file: "" }\n'), [
    `4:30 proxies."app.example.com".upstream_tls.ca_file is empty (write the path of a PEM file, or remove the key for the default)`,
  ]);
  assert.deepEqual(messages("    upstream: https://a\n    upstream_tls: { verify: false }\n"), [
    `4:21 unknown key "verify" in proxies."app.example.com".upstream_tls (known keys: ca_file, server_name, client_cert_file, client_key_file, insecure_skip_verify)`,
  ]);
});

/** A config file in `pki.dir` with one route whose upstream_tls is `settings`. */
async function writeConfig(pki: TestPki, settings: string): Promise<string> {
  const path = `${pki.dir}/config.yaml`;
  await Deno.writeTextFile(
    path,
    `proxies:\n  "app.example.com":\n    upstream: https://10.0.0.5:8443\n    upstream_tls: ${settings}\n`,
  );
  return path;
}

async function loadIssues(path: string): Promise<string[]> {
  try {
    await loadConfig(path);
  } catch (error) {
    if (error instanceof ConfigError) return error.issues.map((i) => `${i.line}:${i.col} ${i.message}`);
    throw error;
  }
  assert.fail("expected a ConfigError");
}

Deno.test("loadConfig() reads the files into material that never serializes the key", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nexo_upstream_tls_config_" });
  try {
    const pki = await makeTestPki(dir);
    const client = `client_cert_file: ${pki.clientCert}, client_key_file: ${pki.clientKey}`;
    const path = await writeConfig(pki, `{ ca_file: ${pki.caCert}, server_name: app.internal, ${client} }`);
    const config = await loadConfig(path);
    const material = (config.routes[0] as ProxyRoute).upstreamTls?.material;
    assert.ok(material);
    assert.deepEqual(material.caCerts, [await Deno.readTextFile(pki.caCert)]);
    assert.equal(material.clientCert?.key, await Deno.readTextFile(pki.clientKey));
    assert.equal(material.serverName, "app.internal");
    assert.ok(material.clientCertNotAfter!.getTime() > Date.now());
    assert.match(material.id, /^[0-9a-f]{32}$/);
    const key = (await Deno.readTextFile(pki.clientKey)).split("\n")[1]!;
    assert.ok(!JSON.stringify(config).includes(key), "JSON.stringify leaves the key out");
    assert.deepEqual(JSON.parse(JSON.stringify(material)), { id: material.id });
    const cloned = structuredClone(material) as unknown as Record<string, unknown>;
    assert.equal(cloned.clientCert, undefined, "a worker message leaves the key out");
    assert.ok(!JSON.stringify(cloned).includes(key));

    const same = (await loadConfig(path)).routes[0] as ProxyRoute;
    assert.equal(same.upstreamTls?.material?.id, material.id, "the same files: the same id");
    const other = await writeConfig(
      pki,
      `{ ca_file: ${pki.rogueCaCert}, server_name: app.internal, ${client} }`,
    );
    const changed = (await loadConfig(other)).routes[0] as ProxyRoute;
    assert.notEqual(changed.upstreamTls?.material?.id, material.id, "another CA: another id");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadConfig() refuses upstream_tls files it cannot use, naming the file and the fix", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nexo_upstream_tls_config_" });
  try {
    const pki = await makeTestPki(dir);
    const at = '4:5 proxies."app.example.com".upstream_tls';
    assert.deepEqual(await loadIssues(await writeConfig(pki, `{ ca_file: ${dir}/nope.pem }`)), [
      `${at}.ca_file: cannot read ${dir}/nope.pem: it does not exist (check the path)`,
    ]);
    assert.deepEqual(await loadIssues(await writeConfig(pki, `{ ca_file: ${pki.clientKey} }`)), [
      `${at}.ca_file: Cannot read certificate "${pki.clientKey}": no certificate found; it holds a private key instead (are the certificate and key files swapped?)`,
    ]);
    const swapped = `{ client_cert_file: ${pki.clientCert}, client_key_file: ${pki.rogueClientKey} }`;
    assert.deepEqual(await loadIssues(await writeConfig(pki, swapped)), [
      `${at}.client_key_file: Private key "${pki.rogueClientKey}" does not belong to certificate "${pki.clientCert}" (install the key that was generated with this certificate, or reissue the certificate)`,
    ]);
    const key = await Deno.readTextFile(pki.clientKey);
    const issues = await loadIssues(
      await writeConfig(pki, `{ client_cert_file: ${pki.clientKey}, client_key_file: ${pki.clientKey} }`),
    );
    assert.equal(issues.length, 1);
    assert.ok(!issues[0]!.includes(key.split("\n")[1]!), "the key never reaches a message");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("upstreamTlsWarnings() names skipped verification and a client certificate near or past its end", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nexo_upstream_tls_config_" });
  try {
    const pki = await makeTestPki(dir);
    const skip = parseConfig(
      route("    upstream: https://10.0.0.5:8443\n    upstream_tls: { insecure_skip_verify: true }\n"),
      FILE,
    );
    assert.deepEqual(upstreamTlsWarnings(skip, Date.now()).map((w) => w.key), [
      `proxies."app.example.com".upstream_tls.insecure_skip_verify`,
    ]);
    assert.match(
      upstreamTlsWarnings(skip, Date.now())[0]!.message,
      /^nexo does not verify the certificate of 10\.0\.0\.5:8443: anyone/,
    );
    const client = `{ client_cert_file: ${pki.clientCert}, client_key_file: ${pki.clientKey} }`;
    const config = await loadConfig(await writeConfig(pki, client));
    assert.deepEqual(
      upstreamTlsWarnings(config, Date.now() - 60 * 86_400_000),
      [],
      "two months before: quiet",
    );
    const [soon] = upstreamTlsWarnings(config, Date.now());
    assert.equal(soon?.key, `proxies."app.example.com".upstream_tls.client_cert_file`);
    assert.match(
      soon!.message,
      /expires on \d{4}-\d\d-\d\d, in 1 day \(renew it, then reload nexo with SIGHUP\)$/,
    );
    const [expired] = upstreamTlsWarnings(config, Date.now() + 3 * 86_400_000);
    assert.match(expired!.message, /expired on \d{4}-\d\d-\d\d: upstreams that check it refuse nexo/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
