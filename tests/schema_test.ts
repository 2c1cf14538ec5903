// The JSON Schema in schema/nexo.schema.json (for editors) agrees with nexo's own parser: every example
// config (and every config block of the README) passes both, and a set of broken configs fails both.

import assert from "node:assert/strict";
import Ajv from "ajv";
import { parse as parseYaml } from "yaml";
import { ConfigError } from "../lib/config/errors.ts";
import { parseConfig } from "../lib/config/parse.ts";
import { configWarnings } from "../lib/config_warnings.ts";

const ROOT = new URL("..", import.meta.url);
const schema = JSON.parse(await Deno.readTextFile(new URL("schema/nexo.schema.json", ROOT)));
// deno-lint-ignore no-explicit-any
const validate = new (Ajv as any)({ allErrors: true, strict: false }).compile(schema);

function parserAccepts(text: string): boolean {
  try {
    parseConfig(text, "/etc/nexo/config.yaml");
    return true;
  } catch (error) {
    if (error instanceof ConfigError) return false;
    throw error;
  }
}

Deno.test("every example config validates against the JSON Schema and the parser", async () => {
  const files = ["examples/config.yaml", "examples/local.yaml", "tests/testdata/seed.yaml"];
  for (const file of files) {
    const text = await Deno.readTextFile(new URL(file, ROOT));
    assert.ok(validate(parseYaml(text)), `${file}: ${JSON.stringify(validate.errors)}`);
    assert.ok(parserAccepts(text), file);
  }
});

Deno.test("every YAML block of the README validates against the JSON Schema and the parser", async () => {
  const readme = await Deno.readTextFile(new URL("README.md", ROOT));
  const blocks = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)].map((match) => match[1]!);
  assert.ok(blocks.length >= 5, "the README shows its config in yaml blocks");
  for (const text of blocks) {
    assert.ok(validate(parseYaml(text)), `${text}\n${JSON.stringify(validate.errors)}`);
    assert.ok(parserAccepts(text), text);
  }
});

Deno.test("every example config passes `nexo check` without a warning", async () => {
  // examples/local.yaml sent a year of HSTS for *.localhost, against the README's own advice.
  for (const file of ["examples/config.yaml", "examples/local.yaml"]) {
    const config = parseConfig(await Deno.readTextFile(new URL(file, ROOT)), "/etc/nexo/config.yaml");
    assert.deepEqual(configWarnings(config).map((warning) => warning.message), [], file);
  }
});

/** The top-level block github_auth needs. */
const GITHUB = `auth:\n  host: auth.example.com\n  github: {client_id: a, client_secret: b}\n`;

/** A bcrypt hash of cost 12, for basic_auth users. */
const HASH = "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW";

Deno.test("the JSON Schema accepts every form of hsts and access rules the parser accepts", () => {
  const good = [
    `hsts: false\n`,
    `hsts: true\n`,
    `hsts: {max_age: 0}\n`,
    `hsts: {max_age: 8760h, include_subdomains: true}\n`,
    `hsts: {max_age: 63072000, include_subdomains: true, preload: true}\n`,
    `hsts: {include_subdomains: true, preload: true}\n`,
    `hsts: {preload: false}\n`,
    `proxies:\n  "a.example.com":\n    upstream: http://127.0.0.1:8080\n    hsts: false\n`,
    `proxies:\n  "a.example.com":\n    redirect: example.org\n    hsts: {max_age: 300}\n`,
    `deny: ["203.0.113.0/24", "2001:db8::1"]\n`,
    `proxies:\n  "a.example.com":\n    upstream: http://x\n    allow: ["192.0.2.0/24"]\n    deny: [192.0.2.9]\n`,
    `proxies:\n  "a.example.com":\n    upstream: http://x\n    rate_limit: {requests: 100, per: 1m, burst: 20}\n`,
    `proxies:\n  "a.example.com":\n    upstream: http://x\n    forward_auth: {url: "http://a:9091/v", copy_headers: [Remote-User], timeout: 2s}\n`,
    `proxies:\n  "a.example.com":\n    upstream: http://x\n    basic_auth: {users: {alice: "${HASH}"}, realm: admin, pass_credentials: true}\n`,
    `${GITHUB}proxies:\n  "a.example.com":\n    upstream: http://x\n    github_auth: {allowed_users: [octocat, "@Hubot"]}\n`,
    `proxies:\n  "a.example.com":\n    upstream: [http://10.0.0.5:3000, http://10.0.0.6:3000]\n    lb: ip_hash\n` +
    `    health_check: {path: /healthz, interval: 5s, timeout: 1s, status: 2xx, healthy_after: 1}\n` +
    `    passive_health: {max_fails: 5, fail_window: 1m}\n    retry: {tries: 3, on: [connect_error, timeout, 503]}\n`,
    `proxies:\n  "a.example.com":\n    upstream: [http://a, http://b]\n    passive_health: false\n    retry: false\n` +
    `    health_check: {path: /, status: 204}\n`,
    `proxies:\n  "a.example.com":\n    upstream: https://10.0.0.5:8443\n    upstream_tls: {ca_file: ca.pem, ` +
    `server_name: app.internal, client_cert_file: c.pem, client_key_file: c.key}\n`,
    `proxies:\n  "a.example.com":\n    upstream: https://x\n    upstream_tls: {insecure_skip_verify: true}\n`,
    `auth:\n  host: auth.example.com\n  session_ttl: 12h\n  github: {client_id: a, client_secret: b, ` +
    `api_base: "https://ghe.example.com/api/v3", oauth_base: "https://ghe.example.com"}\n`,
  ];
  for (const text of good) {
    assert.ok(parserAccepts(text), `parser should accept:\n${text}`);
    assert.ok(
      validate(parseYaml(text)),
      `schema should accept:\n${text}\n${JSON.stringify(validate.errors)}`,
    );
  }
});

Deno.test("the JSON Schema rejects what the parser rejects", () => {
  const broken = [
    `proxies:\n  "a.example.com":\n    upstrem: http://127.0.0.1:8080\n`,
    `proxies:\n  "a.example.com":\n    upstream: localhost:3000\n`,
    `proxies:\n  "a.example.com":\n    upstream: http://x\n    redirect: example.org\n`,
    `proxies:\n  "a.example.com": {}\n`,
    `proxies:\n  "a.example.com":\n    upstream: http://x\n    timeout: soon\n`,
    `proxies:\n  "a.example.com":\n    redirect: example.org\n    status: 200\n`,
    `limits:\n  max_body: lots\n`,
    `issuer: letsencrypt\n`,
    `listen: "http://0.0.0.0:443"\n`,
    `cloudflare:\n  zone_id: abc\n`,
    `wildcards:\n  - "example.com"\n`,
    `acme:\n  key_type: ed25519\n`,
    `cert_dr: /tmp\n`,
    `hsts: "max-age=31536000"\n`,
    `hsts: {max_age: -1}\n`,
    `hsts: {max_age: 1y}\n`,
    `hsts: {includeSubDomains: true}\n`,
    `hsts: {preload: true}\n`,
    `hsts: {include_subdomains: false, preload: true}\n`,
    `hsts: {max_age: 86400, include_subdomains: true, preload: true}\n`,
    `proxies:\n  "a.example.com":\n    redirect: example.org\n    hsts: {preload: true}\n`,
    `deny: "203.0.113.0/24"\n`,
    `deny: ["example.com"]\n`,
    `proxies:\n  "a.example.com":\n    upstream: http://x\n    allow: []\n`,
    `proxies:\n  "a.example.com":\n    upstream: http://x\n    rate_limit: {requests: 100}\n`,
    `proxies:\n  "a.example.com":\n    upstream: http://x\n    rate_limit: {requests: 0, per: 1m}\n`,
    `proxies:\n  "a.example.com":\n    upstream: http://x\n    rate_limit: {requests: 5, per: 1m, brust: 9}\n`,
    `proxies:\n  "a.example.com":\n    upstream: http://x\n    forward_auth: {copy_headers: [Remote-User]}\n`,
    `proxies:\n  "a.example.com":\n    upstream: http://x\n    forward_auth: {url: "ftp://a/v"}\n`,
    `proxies:\n  "a.example.com":\n    upstream: http://x\n    basic_auth: {users: {alice: "plaintext"}}\n`,
    `proxies:\n  "a.example.com":\n    upstream: http://x\n    basic_auth: {users: {alice: "${
      HASH.replace("$12$", "$15$")
    }"}}\n`,
    `proxies:\n  "a.example.com":\n    upstream: http://x\n    basic_auth: {users: {}}\n`,
    `proxies:\n  "a.example.com":\n    upstream: http://x\n    basic_auth: {realm: admin}\n`,
    `${GITHUB}proxies:\n  "a.example.com":\n    upstream: http://x\n    github_auth: {allowed_users: []}\n`,
    `${GITHUB}proxies:\n  "a.example.com":\n    upstream: http://x\n    github_auth: {allowed_users: [octo_cat]}\n`,
    `${GITHUB}proxies:\n  "a.example.com":\n    upstream: http://x\n    github_auth: {users: [octocat]}\n`,
    `auth:\n  github: {client_id: a, client_secret: b}\n`,
    `proxies:\n  "a.example.com":\n    upstream: []\n`,
    `proxies:\n  "a.example.com":\n    upstream: [http://a, ftp://b]\n`,
    `proxies:\n  "a.example.com":\n    upstream: [http://a, http://a]\n`,
    `proxies:\n  "a.example.com":\n    upstream: [http://a, http://b]\n    lb: random\n`,
    `proxies:\n  "a.example.com":\n    upstream: http://a\n    health_check: {interval: 5s}\n`,
    `proxies:\n  "a.example.com":\n    upstream: http://a\n    health_check: {path: healthz}\n`,
    `proxies:\n  "a.example.com":\n    upstream: http://a\n    retry: {tries: 0}\n`,
    `proxies:\n  "a.example.com":\n    upstream: http://a\n    retry: {on: [404]}\n`,
    `proxies:\n  "a.example.com":\n    upstream: http://a\n    passive_health: true\n`,
    `proxies:\n  "a.example.com":\n    upstream: https://x\n    upstream_tls: {client_cert_file: c.pem}\n`,
    `proxies:\n  "a.example.com":\n    upstream: https://x\n    upstream_tls: {verify: false}\n`,
    `auth:\n  host: auth.example.com\n  github: {client_id: a}\n`,
    `auth:\n  host: auth.example.com\n  github: {client_id: a, client_secret: b, api_base: "ftp://x"}\n`,
    `auth:\n  host: auth.example.com\n  sesion_ttl: 1h\n`,
  ];
  for (const text of broken) {
    assert.equal(parserAccepts(text), false, `parser should reject:\n${text}`);
    assert.equal(validate(parseYaml(text)), false, `schema should reject:\n${text}`);
  }
});
