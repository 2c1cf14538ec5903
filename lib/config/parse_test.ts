import assert from "node:assert/strict";
import { cloudflareOf, issuesOf as issuesOfFile } from "./test_helpers.ts";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError, type ConfigIssue } from "./errors.ts";
import { loadConfig, parseConfig } from "./parse.ts";

const FILE = "/srv/nexo/config.yaml";
const SEED = fileURLToPath(new URL("../../tests/testdata/seed.yaml", import.meta.url));

const issuesOf = (yaml: string): ConfigIssue[] => issuesOfFile(yaml, FILE);

/** The one issue `parseConfig()` throws for `yaml`, checked for its position and message. */
function assertIssue(yaml: string, expected: { line: number; col: number; message: string | RegExp }): void {
  const issues = issuesOf(yaml);
  assert.equal(issues.length, 1, `expected one issue, got:\n${issues.map((i) => i.message).join("\n")}`);
  const [issue] = issues;
  assert.equal(issue?.file, FILE);
  assert.deepEqual([issue?.line, issue?.col], [expected.line, expected.col], issue?.message);
  if (typeof expected.message === "string") assert.equal(issue?.message, expected.message);
  else assert.match(issue?.message ?? "", expected.message);
}

Deno.test("loadConfig() reads the seed config with its values and every default", async () => {
  const config = await loadConfig(SEED);
  assert.equal(config.file, SEED);
  assert.equal(config.baseDir, "/etc/nexo");
  assert.equal(config.certDir, "/etc/nexo/certs");
  assert.equal(config.email, "your-email@example.com");
  assert.deepEqual(cloudflareOf(config), {
    apiToken: "your-cloudflare-api-token",
    apiBase: "https://api.cloudflare.com/client/v4",
    zoneId: null,
  });
  assert.deepEqual(config.wildcards, ["*.example.com"]);
  assert.deepEqual(config.listen, { hostname: "", port: 443 });
  assert.equal(config.httpListen, null);
  assert.equal(config.issuer, "acme");
  assert.equal(config.acme.directory, "https://acme-v02.api.letsencrypt.org/directory");
  const [api, blog, root] = config.routes;
  assert.equal(config.routes.length, 3);
  assert.equal(api?.kind, "proxy");
  assert.equal(api?.kind === "proxy" && api.upstreams[0]!.href, "http://172.17.0.1:8080/");
  assert.deepEqual(api?.position, { file: SEED, line: 9, col: 3 });
  assert.equal(blog?.kind === "proxy" && blog.upstreams[0]!.href, "http://172.17.0.1:3000/");
  assert.equal(root?.kind, "redirect");
  assert.equal(root?.kind === "redirect" && root.target.href, "https://github.com/yourusername");
  assert.equal(root?.kind === "redirect" && root.status, 302);
});

Deno.test("parseConfig() fills in every default for a config with one setting", () => {
  const config = parseConfig("email: admin@example.com\n", FILE);
  assert.deepEqual(config, {
    file: FILE,
    baseDir: "/etc/nexo",
    certDir: "/etc/nexo/certs",
    email: "admin@example.com",
    listen: { hostname: "", port: 443 },
    httpListen: null,
    publicHttpsPort: 443,
    staging: false,
    issuer: "acme",
    acme: {
      directory: "https://acme-v02.api.letsencrypt.org/directory",
      caCert: null,
      renewBeforeMs: 720 * 3_600_000,
      checkIntervalMs: 24 * 3_600_000,
      retryIntervalMs: 3_600_000,
      propagationTimeoutMs: 120_000,
      dnsResolvers: [],
      keyType: "ecdsa",
      eab: null,
      fallbacks: [],
    },
    dns: null,
    wildcards: [],
    limits: {
      maxBodyBytes: 10 * 1024 * 1024,
      maxHeaderBytes: 16 * 1024,
      readTimeoutMs: 30_000,
      idleTimeoutMs: 120_000,
      responseTimeoutMs: 30_000,
      bodyTimeoutMs: 300_000,
    },
    trustedProxies: [],
    deny: [],
    admin: null,
    storage: null,
    auth: null,
    routes: [],
  });
});

Deno.test("parseConfig() binds admin.listen to loopback unless a host is written", () => {
  assert.deepEqual(parseConfig(`admin:\n  listen: ":9090"\n`, FILE).admin, {
    listen: { hostname: "127.0.0.1", port: 9090 },
    username: "admin",
    passwordHash: null,
    metricsToken: null,
    trafficFile: null,
  });
  assert.deepEqual(parseConfig(`admin:\n  listen: "[::1]:9090"\n`, FILE).admin?.listen, {
    hostname: "::1",
    port: 9090,
  });
  assert.throws(() => parseConfig(`admin:\n  port: 9090\n`, FILE), /admin/);
});

const HASH = "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW";

Deno.test("parseConfig() refuses admin.listen beyond loopback without admin.password_hash, naming the fix", () => {
  assertIssue(`admin:\n  listen: "0.0.0.0:9090"\n`, {
    line: 2,
    col: 11,
    message:
      /admin\.listen "0\.0\.0\.0:9090" is reachable from other machines.*set admin\.password_hash \(`nexo hash-password` prints one\), or listen on 127\.0\.0\.1/,
  });
  const config = parseConfig(
    `admin:\n  listen: "0.0.0.0:9090"\n  username: ops\n  password_hash: "${HASH}"\n` +
      `  metrics_token: prometheus-scrape-token-0123\n`,
    FILE,
  );
  assert.deepEqual(config.admin, {
    listen: { hostname: "0.0.0.0", port: 9090 },
    username: "ops",
    passwordHash: HASH,
    metricsToken: "prometheus-scrape-token-0123",
    trafficFile: null,
  });
  assertIssue(`admin:\n  listen: ":9090"\n  password_hash: hunter2\n`, {
    line: 3,
    col: 18,
    message: /must be a bcrypt hash/,
  });
  const short = issuesOf(`admin:\n  listen: ":9090"\n  metrics_token: short-secret\n`);
  assert.match(short[0]!.message, /16 to 256 visible characters/);
  assert.doesNotMatch(short[0]!.message, /short-secret/);
  assertIssue(`metrics_token: x\n`, { line: 1, col: 1, message: /belongs in admin:/ });
});

Deno.test("parseConfig() treats a key with no value as the default", () => {
  const config = parseConfig("listen:\nacme:\nlimits:\nproxies:\nemail: ~\n", FILE);
  assert.deepEqual(config.listen, { hostname: "", port: 443 });
  assert.equal(config.acme.renewBeforeMs, 720 * 3_600_000);
  assert.equal(config.limits.maxBodyBytes, 10 * 1024 * 1024);
  assert.deepEqual(config.routes, []);
  assert.equal(config.email, null);
});

Deno.test("parseConfig() defaults cert_dir to <base_dir>/certs", () => {
  assert.equal(parseConfig("base_dir: /var/lib/nexo\n", FILE).certDir, "/var/lib/nexo/certs");
});

Deno.test("parseConfig() resolves relative paths against the config file's directory", () => {
  const config = parseConfig("base_dir: data\ncert_dir: ../certs\nacme:\n  ca_cert: ./ca/root.pem\n", FILE);
  assert.equal(config.baseDir, "/srv/nexo/data");
  assert.equal(config.certDir, "/srv/certs");
  assert.equal(config.acme.caCert, "/srv/nexo/ca/root.pem");
  assert.equal(parseConfig("base_dir: data\n", FILE).certDir, "/srv/nexo/data/certs");
});

Deno.test("parseConfig() rejects a path starting with ~ and an empty path", () => {
  assertIssue("base_dir: ~/nexo\n", {
    line: 1,
    col: 11,
    message: /base_dir cannot start with "~".*full path/,
  });
  assertIssue(`cert_dir: ""\n`, { line: 1, col: 11, message: /cert_dir is empty/ });
});

Deno.test("loadConfig() resolves relative paths against the directory of the file it reads", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "config.yaml"), "base_dir: state\n");
    const config = await loadConfig(join(dir, "config.yaml"));
    assert.equal(config.file, join(dir, "config.yaml"));
    assert.equal(config.baseDir, join(dir, "state"));
    assert.equal(config.certDir, join(dir, "state", "certs"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadConfig() reports a missing file as a ConfigError naming the path and what to do", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "nope.yaml");
    try {
      await loadConfig(path);
      assert.fail("expected a ConfigError");
    } catch (caught) {
      assert.ok(caught instanceof ConfigError);
      assert.deepEqual(caught.issues, [{
        file: path,
        line: 0,
        col: 0,
        message:
          "cannot read the config file: it does not exist (create it, or give the path of an existing config file)",
      }]);
      assert.equal(caught.message, `${path}: ${caught.issues[0]?.message}`);
      assert.ok(caught.cause instanceof Deno.errors.NotFound);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadConfig() reports a directory given as the config file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(loadConfig(dir), (error) => {
      assert.ok(error instanceof ConfigError);
      assert.match(error.message, /cannot read the config file: it is a directory/);
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parseConfig() reads every listen address form", () => {
  const listen = (value: string) => parseConfig(`listen: ${value}\n`, FILE).listen;
  assert.deepEqual(listen(":443"), { hostname: "", port: 443 });
  assert.deepEqual(listen("443"), { hostname: "", port: 443 });
  assert.deepEqual(listen(`"443"`), { hostname: "", port: 443 });
  assert.deepEqual(listen("0.0.0.0:443"), { hostname: "0.0.0.0", port: 443 });
  assert.deepEqual(listen("127.0.0.1:8443"), { hostname: "127.0.0.1", port: 8443 });
  assert.deepEqual(listen(`"[::1]:443"`), { hostname: "::1", port: 443 });
  assert.deepEqual(listen("localhost:8443"), { hostname: "localhost", port: 8443 });
  assert.deepEqual(parseConfig("http_listen: :80\n", FILE).httpListen, { hostname: "", port: 80 });
});

Deno.test("parseConfig() rejects bad listen addresses at the value", () => {
  assertIssue("listen: 0.0.0.0\n", {
    line: 1,
    col: 9,
    message: /^listen: .*it has no port \(add one: "0\.0\.0\.0:443"\)/,
  });
  assertIssue("http_listen: 70000\n", {
    line: 1,
    col: 14,
    message: /http_listen: .*port 70000 is out of range/,
  });
  assertIssue("listen: [443]\n", {
    line: 1,
    col: 9,
    message: /listen must be an address like ":443".*, got a list/,
  });
});

Deno.test("parseConfig() reads staging and switches the default ACME directory", () => {
  const config = parseConfig("staging: true\n", FILE);
  assert.equal(config.staging, true);
  assert.equal(config.acme.directory, "https://acme-staging-v02.api.letsencrypt.org/directory");
  const explicit = parseConfig("staging: true\nacme:\n  directory: https://localhost:14000/dir\n", FILE);
  assert.equal(explicit.acme.directory, "https://localhost:14000/dir");
});

Deno.test("parseConfig() rejects yes/no for a bool, explaining YAML 1.2", () => {
  assertIssue("staging: yes\n", {
    line: 1,
    col: 10,
    message: `staging must be true or false, got "yes" (YAML 1.2 reads yes/no/on/off as strings)`,
  });
});

Deno.test("parseConfig() accepts the two issuers and suggests the closest for a typo", () => {
  assert.equal(parseConfig("issuer: internal\n", FILE).issuer, "internal");
  assertIssue("issuer: internl\n", {
    line: 1,
    col: 9,
    message: `issuer must be "acme" or "internal", got "internl" (did you mean "internal"?)`,
  });
});

Deno.test("parseConfig() checks that email looks like an email address", () => {
  assert.equal(parseConfig("email: ops@mail.example.org\n", FILE).email, "ops@mail.example.org");
  assertIssue("email: admin\n", {
    line: 1,
    col: 8,
    message: `email must be an email address like "admin@example.com", got "admin"`,
  });
  assertIssue("email: admin@localhost\n", { line: 1, col: 8, message: /email must be an email address/ });
  assertIssue("email: mailto:a@b.co\n", { line: 1, col: 8, message: /\(remove "mailto:"\)/ });
});

Deno.test("parseConfig() rejects an empty file, at line 1", () => {
  for (const text of ["", "\n\n", "# only a comment\n"]) {
    assertIssue(text, {
      line: 1,
      col: 1,
      message: /^the config file is empty; write at least one setting/,
    });
  }
});

Deno.test("parseConfig() rejects a top level that is not a mapping", () => {
  assertIssue("- a\n- b\n", {
    line: 1,
    col: 1,
    message: /^the config must be a mapping of settings, .*; got a list$/,
  });
  assertIssue("\nhello\n", { line: 2, col: 1, message: /the config must be a mapping .*; got "hello"$/ });
});

Deno.test("parseConfig() turns YAML syntax errors into issues with their position", () => {
  assertIssue("email: a@b.co\nproxies: a: b\n", {
    line: 2,
    col: 10,
    message:
      `invalid YAML: a mapping cannot start on the line of its key ("key: a: b"); put it on the next line, indented`,
  });
  assertIssue("a:\n\tb: 1\n", {
    line: 2,
    col: 1,
    message: "invalid YAML: Tabs are not allowed as indentation; indent with spaces",
  });
});

Deno.test("parseConfig() explains that a wildcard must be quoted in YAML", () => {
  assertIssue("wildcards:\n  - *.example.com\nissuer: internal\n", {
    line: 2,
    col: 5,
    message: `unknown YAML alias "*.example.com" (to write a wildcard, quote it: "*.example.com")`,
  });
  const issues = issuesOf("proxies:\n  *.example.com:\n    upstream: http://x\n");
  assert.ok(
    issues.some((issue) => issue.line === 2 && issue.col === 3 && /must be in quotes/.test(issue.message)),
  );
});

Deno.test("parseConfig() rejects a key set twice, naming the first one's line", () => {
  assertIssue("email: a@b.co\nstaging: true\nemail: c@d.co\n", {
    line: 3,
    col: 1,
    message: "email is set twice (first on line 1); remove one of them",
  });
});

Deno.test("parseConfig() suggests the closest key for an unknown one, at the key", () => {
  assertIssue("cert_dr: /x\n", {
    line: 1,
    col: 1,
    message: `unknown key "cert_dr" at the top level (did you mean "cert_dir"?)`,
  });
  assertIssue("acme:\n  renew_befor: 30d\n", {
    line: 2,
    col: 3,
    message: `unknown key "renew_befor" in acme (did you mean "renew_before"?)`,
  });
  assertIssue("database: x\n", {
    line: 1,
    col: 1,
    message: /unknown key "database" at the top level \(known keys: base_dir/,
  });
});

Deno.test("parseConfig() says which block a misplaced top-level key belongs in", () => {
  assertIssue("max_body: 1MiB\n", { line: 1, col: 1, message: /\(max_body belongs in limits:\)/ });
  assertIssue("renew_before: 1h\n", { line: 1, col: 1, message: /\(renew_before belongs in acme:\)/ });
  assertIssue("upstream: http://x\n", {
    line: 1,
    col: 1,
    message: /\(upstream belongs in a route, under a host/,
  });
});

Deno.test("parseConfig() names the expected and the actual type for a wrong type", () => {
  assertIssue("email: [a@b.co]\n", { line: 1, col: 8, message: "email must be a string, got a list" });
  assertIssue("email: 42\n", {
    line: 1,
    col: 8,
    message: `email must be a string, got 42 (put it in quotes: "42")`,
  });
  assertIssue("limits: 10MiB\n", {
    line: 1,
    col: 9,
    message: `limits must be a mapping of settings, got "10MiB"`,
  });
  assertIssue("limits:\n  read_timeout: {a: 1}\n", {
    line: 2,
    col: 17,
    message: `limits.read_timeout must be a duration like "30s" or "1h30m", got a mapping`,
  });
  assertIssue("acme:\n  dns_resolvers: 1.1.1.1\n", {
    line: 2,
    col: 18,
    message: /acme.dns_resolvers must be a list, got "1\.1\.1\.1"/,
  });
});

Deno.test("parseConfig() reads the limits block", () => {
  const config = parseConfig(
    "limits:\n  max_body: 1MB\n  max_header: 64KiB\n  read_timeout: 10s\n  idle_timeout: 2m\n  response_timeout: 1m30s\n" +
      "  body_timeout: 10m\n",
    FILE,
  );
  assert.deepEqual(config.limits, {
    maxBodyBytes: 1_000_000,
    maxHeaderBytes: 65536,
    readTimeoutMs: 10_000,
    idleTimeoutMs: 120_000,
    responseTimeoutMs: 90_000,
    bodyTimeoutMs: 600_000,
  });
  assert.equal(parseConfig("limits:\n  max_body: 0\n", FILE).limits.maxBodyBytes, 0);
});

Deno.test("parseConfig() rejects bad sizes and durations in limits, at the value", () => {
  assertIssue("limits:\n  max_body: 10XB\n", {
    line: 2,
    col: 13,
    message: /^limits\.max_body: invalid size "10XB": unknown unit "XB"/,
  });
  assertIssue("limits:\n  read_timeout: 30\n", {
    line: 2,
    col: 17,
    message:
      `limits.read_timeout: invalid duration "30": it has no unit (write "30s" for seconds or "30m" for minutes)`,
  });
  assertIssue("limits:\n  idle_timeout: -1s\n", { line: 2, col: 17, message: /it is negative/ });
  assertIssue("limits:\n  response_timeout: 0\n", {
    line: 2,
    col: 21,
    message: /must be at least 1ms, got "0"/,
  });
  assertIssue("limits:\n  max_header: 0\n", {
    line: 2,
    col: 15,
    message: /max_header must be more than 0 bytes/,
  });
});

Deno.test("parseConfig() reads the acme block", () => {
  const config = parseConfig(
    `acme:
  directory: https://localhost:14000/dir
  ca_cert: /etc/pebble/ca.pem
  renew_before: 240h
  check_interval: 12h
  retry_interval: 10m
  propagation_timeout: 5m
  dns_resolvers: ["1.1.1.1", "8.8.8.8:53", "[2606:4700:4700::1111]:53"]
`,
    FILE,
  );
  assert.deepEqual(config.acme, {
    directory: "https://localhost:14000/dir",
    caCert: "/etc/pebble/ca.pem",
    renewBeforeMs: 240 * 3_600_000,
    checkIntervalMs: 12 * 3_600_000,
    retryIntervalMs: 600_000,
    propagationTimeoutMs: 300_000,
    dnsResolvers: ["1.1.1.1", "8.8.8.8:53", "[2606:4700:4700::1111]:53"],
    keyType: "ecdsa",
    eab: null,
    fallbacks: [],
  });
});

Deno.test("parseConfig() takes a CA by name in acme.directory, and suggests the name meant", () => {
  const directory = (name: string) => parseConfig(`acme:\n  directory: ${name}\n`, FILE).acme.directory;
  assert.equal(directory("letsencrypt"), "https://acme-v02.api.letsencrypt.org/directory");
  assert.equal(directory("LetsEncrypt-Staging"), "https://acme-staging-v02.api.letsencrypt.org/directory");
  assertIssue("acme:\n  directory: letsencrpyt\n", {
    line: 2,
    col: 14,
    message: `acme.directory must be an ACME directory URL (https://...) or one of letsencrypt, ` +
      `letsencrypt-staging, zerossl, google, google-staging, got "letsencrpyt" (did you mean "letsencrypt"?)`,
  });
});

Deno.test("parseConfig() reads acme.eab, and requires it for the CAs that do", () => {
  const key = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";
  const config = parseConfig(
    `acme:\n  directory: zerossl\n  eab:\n    kid: k1\n    hmac_key: ${key}\n`,
    FILE,
  );
  assert.equal(config.acme.directory, "https://acme.zerossl.com/v2/DV90");
  assert.deepEqual(config.acme.eab, { kid: "k1", hmacKey: key });
  assertIssue("acme:\n  directory: google\n", {
    line: 2,
    col: 14,
    message:
      `acme.directory google requires External Account Binding: add acme.eab with the kid and hmac_key ` +
      `from gcloud publicca external-account-keys create`,
  });
  // A malformed key is named by its key path; the value is never quoted.
  const bad = "not a key: has spaces!";
  const issues = issuesOf(`acme:\n  eab:\n    kid: k1\n    hmac_key: "${bad}"\n`);
  assert.equal(issues.length, 1);
  assert.match(issues[0]!.message, /^acme\.eab\.hmac_key must be the base64url key the CA shows/);
  assert.ok(!issues[0]!.message.includes(bad));
  const missing = issuesOf(`acme:\n  eab:\n    kid: k1\n`);
  assert.match(missing[0]!.message, /acme\.eab\.hmac_key is required/);
  // A mistyped key under eab is reported without its value.
  const typo = issuesOf(`acme:\n  eab:\n    kid: k1\n    hmac_key: ${key}\n    hmac-key: ${key}\n`);
  assert.ok(typo.every((issue) => !issue.message.includes(key)), JSON.stringify(typo));
});

Deno.test("parseConfig() rejects a bad ACME directory and bad DNS resolvers", () => {
  assertIssue("acme:\n  directory: acme.example.com/dir\n", {
    line: 2,
    col: 14,
    message:
      `acme.directory must be an http(s) URL, got "acme.example.com/dir" (add "https://": "https://acme.example.com/dir")`,
  });
  const issues = issuesOf("acme:\n  dns_resolvers:\n    - 53\n    - 2606:4700::1111\n");
  assert.deepEqual(issues.map((i) => [i.line, i.col]), [[3, 7], [4, 7]]);
  assert.equal(issues[0]?.message, `acme.dns_resolvers[0] must be a string like "1.1.1.1:53", got 53`);
  assert.match(
    issues[1]?.message ?? "",
    /^acme\.dns_resolvers\[1\]: invalid DNS resolver "2606:4700::1111": put IPv6 addresses in brackets/,
  );
});

Deno.test("parseConfig() reads the cloudflare block, trimming a trailing slash off api_base", () => {
  const config = parseConfig(
    "cloudflare:\n  api_token: t0ken\n  api_base: http://127.0.0.1:9000/client/v4/\n  zone_id: 023e105f4ecef8ad9ca31a8372d0c353\n",
    FILE,
  );
  assert.deepEqual(cloudflareOf(config), {
    apiToken: "t0ken",
    apiBase: "http://127.0.0.1:9000/client/v4",
    zoneId: "023e105f4ecef8ad9ca31a8372d0c353",
  });
});

Deno.test("parseConfig() requires a non-empty api_token in a cloudflare block", () => {
  assertIssue("cloudflare:\n  zone_id: abc\n", {
    line: 1,
    col: 1,
    message: /^cloudflare\.api_token is required \(create one/,
  });
  assertIssue("cloudflare:\n", { line: 1, col: 1, message: /^cloudflare\.api_token is required/ });
  assertIssue(`cloudflare:\n  api_token: ""\n`, {
    line: 2,
    col: 14,
    message: /^cloudflare\.api_token is empty/,
  });
  assertIssue("cloudflare:\n  api_token: x\n  api_base: ftp://x\n", {
    line: 3,
    col: 13,
    message: /cloudflare\.api_base must be an http\(s\) URL/,
  });
});

Deno.test("parseConfig() never puts the Cloudflare API token in an error message", () => {
  const token = "Xq7-secret-TOKEN_4f9a2b8c1d";
  const configs = [
    `cloudflare:\n  api_token: [${token}]\n`,
    `cloudflare:\n  api_token: {${token}: 1}\n`,
    `cloudflare: ${token}\n`,
    `cloudflare:\n  api_token: x\n  ${token}: 1\n`,
    `cloudflare:\n  api_token: "${token}\n`,
    `cloudflare:\n  api_token: ${token}\n  api_token: ${token}\n`,
    `cloudflare:\n  api_token: ${token}\n   zone_id: [\n`,
    `cloudflare:\n  api_token: !!binary ${token}\n`,
    `api_token: ${token}\n`,
    `cloudflare:\n  - ${token}\n`,
  ];
  for (const yaml of configs) {
    const issues = issuesOf(yaml);
    for (const issue of issues) assert.ok(!issue.message.includes(token), `token leaked: ${issue.message}`);
  }
  const numeric = issuesOf("cloudflare:\n  api_token: 12345678901234\n");
  assert.equal(numeric[0]?.message, "cloudflare.api_token must be a string, got a number (put it in quotes)");
});

Deno.test("parseConfig() masks the API token when it was pasted into another setting too", () => {
  const token = "Xq7-secret-TOKEN_4f9a2b8c1d";
  for (
    const yaml of [
      `cloudflare:\n  api_token: ${token}\n  api_base: ${token}\n`,
      `cloudflare: {api_token: ${token}, api_base: ${token}}\n`,
    ]
  ) {
    const [issue] = issuesOf(yaml);
    assert.equal(
      issue?.message,
      `cloudflare.api_base must be an http(s) URL, got "<api_token>" (add "https://": "https://<api_token>")`,
    );
  }
});

Deno.test("parseConfig() validates wildcards, lowercasing them", () => {
  const config = parseConfig(
    `issuer: internal\nwildcards:\n  - "*.Example.com"\n  - "*.dev.example.com"\n`,
    FILE,
  );
  assert.deepEqual(config.wildcards, ["*.example.com", "*.dev.example.com"]);
  assertIssue(`issuer: internal\nwildcards:\n  - "*.com"\n`, {
    line: 3,
    col: 5,
    message: /^wildcards\[0\]: invalid wildcard "\*\.com": it would cover a whole top-level domain/,
  });
  assertIssue(`issuer: internal\nwildcards: ["*.a.com", "*.A.com"]\n`, {
    line: 2,
    col: 24,
    message: `wildcards[1] repeats "*.a.com" (first listed on line 2); remove one of them`,
  });
});

Deno.test("parseConfig() requires Cloudflare for ACME wildcards, at the wildcards key", () => {
  assertIssue(`wildcards:\n  - "*.example.com"\n`, {
    line: 1,
    col: 1,
    message: /^wildcards need the ACME DNS-01 challenge.*add a cloudflare: block/,
  });
});

Deno.test("parseConfig() collects every issue in file order", () => {
  const issues = issuesOf(`email: nobody
listen: 99999
staging: maybe
limits:
  max_body: lots
proxies:
  "api.example.com":
    upstrem: http://x
`);
  assert.deepEqual(issues.map((i) => [i.line, i.col]), [[1, 8], [2, 9], [3, 10], [5, 13], [8, 5]]);
  assert.match(issues[0]?.message ?? "", /^email must be an email address/);
  assert.match(issues[4]?.message ?? "", /did you mean "upstream"/);
  const error = new ConfigError(issues);
  assert.equal(error.message.split("\n").length, 5);
  assert.ok(error.message.startsWith(`${FILE}:1:8: email must be`));
});

Deno.test("parseConfig() accepts the config nexo demo writes", () => {
  const config = parseConfig(
    `base_dir: "/tmp/nexo-demo"
issuer: internal
listen: "127.0.0.1:8443"
http_listen: "127.0.0.1:8080"
hsts:
  max_age: 5m
proxies:
  "app.localhost":
    upstream: http://127.0.0.1:3000
  "old.localhost":
    redirect: https://app.localhost:8443
    status: 301
    keep_path: true
`,
    FILE,
  );
  assert.deepEqual(config.httpListen, { hostname: "127.0.0.1", port: 8080 });
  assert.deepEqual(config.routes.map((route) => [route.kind, route.host]), [
    ["proxy", "app.localhost"],
    ["redirect", "old.localhost"],
  ]);
  assert.deepEqual(config.routes.map((route) => route.hsts), ["max-age=300", "max-age=300"]);
});

Deno.test("parseConfig() reads acme.key_type, ECDSA by default, and rejects other types", () => {
  assert.equal(parseConfig("acme:\n  key_type: rsa\n", "/etc/nexo/config.yaml").acme.keyType, "rsa");
  assert.equal(parseConfig("proxies: {}\n", "/etc/nexo/config.yaml").acme.keyType, "ecdsa");
  assert.throws(
    () => parseConfig("acme:\n  key_type: ed25519\n", "/etc/nexo/config.yaml"),
    /key_type must be "ecdsa"/,
  );
});

Deno.test("parseConfig() reads trusted_proxies and reports an invalid network", () => {
  assert.deepEqual(parseConfig(`trusted_proxies: ["10.0.0.0/8", "2400:cb00::/32"]\n`, FILE).trustedProxies, [
    "10.0.0.0/8",
    "2400:cb00::/32",
  ]);
  assert.throws(
    () => parseConfig(`trusted_proxies: ["10.0.0.0/33"]\n`, FILE),
    /trusted_proxies.*prefix length/,
  );
});

Deno.test("parseConfig() reads deny, allow and rate_limit into each route's access, null without them", () => {
  const config = parseConfig(
    `deny: ["203.0.113.0/24"]\nproxies:\n  "admin.example.com":\n    upstream: http://127.0.0.1:9000\n` +
      `    allow: ["192.0.2.0/24", "2001:db8::/32"]\n    deny: [192.0.2.9]\n` +
      `    rate_limit: { requests: 100, per: 1m }\n  "open.example.com":\n    redirect: example.org\n` +
      `  "api.example.com":\n    upstream: http://127.0.0.1:9001\n    rate_limit:\n      requests: 5\n` +
      `      per: 1s\n      burst: 20\n`,
    FILE,
  );
  assert.deepEqual(config.deny, ["203.0.113.0/24"]);
  assert.deepEqual(config.routes.map((route) => route.access), [
    {
      allow: ["192.0.2.0/24", "2001:db8::/32"],
      deny: ["192.0.2.9"],
      rateLimit: { requests: 100, perMs: 60_000, burst: 100 },
      basicAuth: null,
      githubAuth: null,
      forwardAuth: null,
    },
    null,
    {
      allow: null,
      deny: [],
      rateLimit: { requests: 5, perMs: 1000, burst: 20 },
      basicAuth: null,
      githubAuth: null,
      forwardAuth: null,
    },
  ]);
  assert.deepEqual(parseConfig("proxies: {}\n", FILE).deny, []);
  const basic = parseConfig(
    `proxies:\n  "a.example.com":\n    redirect: example.org\n    basic_auth:\n      users:\n` +
      `        alice: "$2y$10$abcdefghijklmnopqrstuu5EUFb3rt1l0ZRDZX0pi0p0WrOmUNaPe"\n`,
    FILE,
  ).routes[0]!.access?.basicAuth;
  assert.deepEqual(basic, {
    users: { alice: "$2y$10$abcdefghijklmnopqrstuu5EUFb3rt1l0ZRDZX0pi0p0WrOmUNaPe" },
    realm: "restricted",
    passCredentials: false,
  });
  const auth = parseConfig(
    `proxies:\n  "a.example.com":\n    upstream: http://127.0.0.1:9000\n    forward_auth:\n` +
      `      url: http://127.0.0.1:9091/api/verify\n      copy_headers: [Remote-User, Remote-Groups]\n` +
      `      timeout: 2s\n`,
    FILE,
  ).routes[0]!.access?.forwardAuth;
  assert.deepEqual(
    { ...auth, url: auth?.url.href },
    {
      url: "http://127.0.0.1:9091/api/verify",
      copyHeaders: ["remote-user", "remote-groups"],
      timeoutMs: 2000,
    },
  );
});

Deno.test("parseConfig() reports bad access rules at their line and column, with the fix", () => {
  const route = `proxies:\n  "a.example.com":\n    upstream: http://127.0.0.1:9000\n`;
  assertIssue(`${route}    allow: ["192.0.2.0/33"]\n`, {
    line: 4,
    col: 13,
    message: /^proxies\."a\.example\.com"\.allow\[0\]: "192\.0\.2\.0\/33" has an invalid prefix length/,
  });
  assertIssue(`${route}    deny: ["example.com"]\n`, {
    line: 4,
    col: 12,
    message: /deny\[0\]: "example\.com" is not an IP address or CIDR/,
  });
  assertIssue(`${route}    allow: []\n`, {
    line: 4,
    col: 12,
    message: /allow is empty, which would refuse every client; list the networks to let in/,
  });
  assertIssue(`${route}    rate_limit: { requests: 100 }\n`, {
    line: 4,
    col: 17,
    message: /rate_limit needs per, like \{ requests: 100, per: 1m \}/,
  });
  assertIssue(`${route}    rate_limit: { requests: 0, per: 1m }\n`, {
    line: 4,
    col: 29,
    message: /rate_limit\.requests must be a whole number from 1 to 1000000, got "0"/,
  });
  assertIssue(`${route}    rate_limit: { requests: 10, per: 1m, brust: 20 }\n`, {
    line: 4,
    col: 42,
    message: /unknown key "brust" in .*rate_limit \(known keys: requests, per, burst\)/,
  });
  assertIssue(`deny: "203.0.113.0/24"\nproxies: {}\n`, {
    line: 1,
    col: 7,
    message: /^deny must be a list/,
  });
  assertIssue(`${route}    forward_auth: { copy_headers: [Remote-User] }\n`, {
    line: 4,
    col: 19,
    message:
      /forward_auth needs the auth server's url, like \{ url: "http:\/\/127\.0\.0\.1:9091\/api\/verify"/,
  });
  assertIssue(`${route}    forward_auth: { url: "127.0.0.1:9091/verify" }\n`, {
    line: 4,
    col: 26,
    message: /forward_auth\.url must be an http\(s\) URL, got "127\.0\.0\.1:9091\/verify" \(add "http:\/\/"/,
  });
  assertIssue(`${route}    forward_auth: { url: "http://a", copy_headers: ["Remote User"] }\n`, {
    line: 4,
    col: 53,
    message: /copy_headers\[0\] must be a header name like Remote-User, got "Remote User"/,
  });
  const hash = "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW";
  assertIssue(`${route}    basic_auth: { users: { alice: "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=" } }\n`, {
    line: 4,
    col: 35,
    message:
      /basic_auth\.users\.alice must be a bcrypt hash \(60 characters starting "\$2b\$"\); make one with "nexo hash-password"/,
  });
  assertIssue(`${route}    basic_auth: { users: { alice: "${hash.replace("$12$", "$15$")}" } }\n`, {
    line: 4,
    col: 35,
    message: /has bcrypt cost 15, which takes seconds of CPU per check; use a cost from 4 to 14/,
  });
  assertIssue(`${route}    basic_auth: { users: {} }\n`, {
    line: 4,
    col: 26,
    message: /basic_auth\.users is empty, which would refuse every client; add a user/,
  });
  assertIssue(`${route}    basic_auth: { users: { "a:b": "${hash}" } }\n`, {
    line: 4,
    col: 28,
    message: /a user name must not be empty or contain ":"/,
  });
  assertIssue(`${route}    basic_auth: { realm: admin }\n`, {
    line: 4,
    col: 17,
    message: /basic_auth needs users, like \{ users: \{ alice: "\$2b\$12\$\.\.\." \} \}/,
  });
  // allow at the top level belongs in a route.
  assertIssue(`allow: ["192.0.2.0/24"]\nproxies: {}\n`, {
    line: 1,
    col: 1,
    message: /allow belongs in a route/,
  });
});

// Regressions found by parse_fuzz_test.ts.

Deno.test("parseConfig() escapes control characters in messages, keeping each issue on one line", () => {
  assertIssue(`proxies:\n  "a\\nb.com":\n    upstream: http://x\n`, {
    line: 2,
    col: 3,
    message:
      `proxies: invalid hostname "a\\nb.com": "\\n" is not allowed; host names may contain only letters, ` +
      `digits, "-" and "."`,
  });
  assertIssue(`listen: "a\\u0085b:1"\n`, { line: 1, col: 9, message: /^listen: .*"a\\u0085b".*punycode/ });
});

Deno.test("parseConfig() rejects control characters inside string settings, without quoting the value", () => {
  assertIssue(`cert_dir: "/etc/\\0x"\n`, {
    line: 1,
    col: 11,
    message: "cert_dir contains the control character U+0000; remove it",
  });
  assertIssue(`cloudflare:\n  api_token: "abcdef\\r\\nX-Evil: 1"\n`, {
    line: 2,
    col: 14,
    message: "cloudflare.api_token contains the control character U+000D; remove it",
  });
  assertIssue(`email: "a@b.co\\u0000"\n`, {
    line: 1,
    col: 8,
    message: /^email contains the control character/,
  });
  // The line break a block scalar ends with is whitespace at the end, which readers trim: still fine.
  const config = parseConfig(
    "base_dir: |\n  /var/lib/nexo\ncloudflare:\n  api_token: >\n    tok123456\n",
    FILE,
  );
  assert.equal(config.baseDir, "/var/lib/nexo");
  assert.equal(cloudflareOf(config)?.apiToken, "tok123456");
});

Deno.test("parseConfig() says a file nests too deeply once, not with the library's stack overflow", () => {
  const issues = issuesOf(`a: ${"[".repeat(5000)}\n`);
  const deep = issues.filter((issue) => /nested too deeply/.test(issue.message));
  assert.equal(deep.length, 1);
  assert.equal(
    deep[0]?.message,
    `invalid YAML: collections are nested too deeply to read; a config needs only a few levels (look for an ` +
      `unclosed "[" or "{")`,
  );
  assert.ok(issues.every((issue) => !/call stack/i.test(issue.message)), JSON.stringify(issues));
});

Deno.test("parseConfig() reports unclosed brackets once, where the file ends", () => {
  assertIssue(`a: ${"[".repeat(50)}\n`, {
    line: 2,
    col: 1,
    message: `invalid YAML: the "[" opened on line 1 is not closed; close it with "]" (and indent its ` +
      `continuation lines more than the key it belongs to)`,
  });
});

Deno.test("parseConfig() explains a second YAML document without naming a library function", () => {
  assertIssue("email: a@b.co\n---\nemail: c@d.co\n", {
    line: 2,
    col: 1,
    message:
      `invalid YAML: the file holds more than one YAML document (a "---" line starts the next); keep only one`,
  });
});

Deno.test("parseConfig() counts the lines inside a multi-line token, so later positions stay right", () => {
  assertIssue(`a: "one\n  two"\nb: |\n  x\n  y\nc: d: e\n`, {
    line: 6,
    col: 4,
    message:
      `invalid YAML: a mapping cannot start on the line of its key ("key: a: b"); put it on the next line, indented`,
  });
});

Deno.test("parseConfig() resolves an alias to the last anchor of its name before it", () => {
  // Aliases are resolved from one index of the document now, not by yaml's per-alias rescan (which took
  // minutes for thousands of aliases; parse_fuzz_test.ts times that case); the meaning must not change.
  assertIssue(`issuer: internal\nwildcards:\n  - &w "*.example.com"\n  - &w "*.example.org"\n  - *w\n`, {
    line: 5,
    col: 5,
    message: `wildcards[2] repeats "*.example.org" (first listed on line 4); remove one of them`,
  });
  assert.ok(
    issuesOf(`issuer: internal\nwildcards:\n  - *w\n  - &w "*.example.com"\n`).some((issue) =>
      issue.message === `unknown YAML alias "*w"`
    ),
  );
  const config = parseConfig(
    `proxies:\n  a.example.com: {upstream: &u "http://127.0.0.1:1"}\n  b.example.com: {upstream: *u}\n`,
    FILE,
  );
  assert.deepEqual(config.routes.map((route) => route.kind === "proxy" && route.upstreams[0]!.href), [
    "http://127.0.0.1:1/",
    "http://127.0.0.1:1/",
  ]);
});

Deno.test("parseConfig() masks the API token when a YAML error quotes it", () => {
  // Found by parse_fuzz_test.ts: a message quoted the token without the ":" that the redaction included.
  const token = "Xq7-secret-TOKEN_4f9a2b8c1d";
  for (const text of [`cloudflare:\n  api_token: !${token}:\n`, `cloudflare:\n  api_token: !${token}\n`]) {
    const issues = issuesOf(text);
    assert.ok(issues.some((issue) => issue.message.includes("<api_token>")), JSON.stringify(issues));
    for (const issue of issues) assert.ok(!issue.message.includes(token), `token leaked: ${issue.message}`);
  }
});

Deno.test("parseConfig() reads public_https_port and rejects what is not a port", () => {
  const base = `proxies:\n  "a.test":\n    upstream: http://127.0.0.1:1\n`;
  assert.equal(parseConfig(base, "/c.yaml").publicHttpsPort, 443);
  assert.equal(parseConfig(`public_https_port: 8443\n${base}`, "/c.yaml").publicHttpsPort, 8443);
  assert.equal(parseConfig(`public_https_port: "8443"\n${base}`, "/c.yaml").publicHttpsPort, 8443);
  for (const bad of ["0", "65536", "-1", "44.3", "https"]) {
    assert.deepEqual(issuesOf(`public_https_port: ${bad}\n${base}`).map((i) => i.message), [
      `public_https_port must be a port number from 1 to 65535, got ${JSON.stringify(bad)}`,
    ]);
  }
});

Deno.test("parseConfig() reads acme.issuers: the first CA is acme.directory, the rest are tried in turn", () => {
  const config = parseConfig(
    "acme:\n  ca_cert: ca.pem\n  issuers:\n    - letsencrypt\n" +
      "    - { directory: zerossl, eab: { kid: kid-1, hmac_key: abcdefghijklmnopqrstuvwxyz012345 } }\n" +
      "    - { directory: https://ca.internal/acme/directory, ca_cert: /etc/nexo/internal-ca.pem }\n",
    FILE,
  );
  assert.equal(config.acme.directory, "https://acme-v02.api.letsencrypt.org/directory");
  assert.equal(config.acme.eab, null);
  assert.equal(config.acme.caCert, "/srv/nexo/ca.pem");
  assert.deepEqual(config.acme.fallbacks, [
    {
      directory: "https://acme.zerossl.com/v2/DV90",
      eab: { kid: "kid-1", hmacKey: "abcdefghijklmnopqrstuvwxyz012345" },
      caCert: "/srv/nexo/ca.pem",
    },
    { directory: "https://ca.internal/acme/directory", eab: null, caCert: "/etc/nexo/internal-ca.pem" },
  ]);
  const problems = (yaml: string) => issuesOf(yaml).map((i) => i.message).join("\n");
  assert.match(
    problems("acme:\n  directory: letsencrypt\n  issuers: [zerossl]\n"),
    /acme\.directory and acme\.issuers are both set: move it into the first issuer/,
  );
  assert.match(
    problems("acme:\n  issuers: [letsencrypt, zerossl]\n"),
    /acme\.issuers\[1\] zerossl requires External Account Binding: add acme\.issuers\[1\]\.eab/,
  );
  assert.match(
    problems("acme:\n  issuers: [letsencrypt, letsencrypt]\n"),
    /acme\.issuers\[1\] names .* again/,
  );
  assert.match(problems("acme:\n  issuers: []\n"), /acme\.issuers must be a list of CAs/);
  assert.match(problems("acme:\n  issuers: [lets-encrypt]\n"), /did you mean "letsencrypt"/);
});

Deno.test("parseConfig() reads a route with admin: true, which needs admin.password_hash and takes no upstream", () => {
  const admin = `admin:\n  listen: ":9090"\n  password_hash: "${HASH}"\n`;
  const config = parseConfig(
    `${admin}proxies:\n  "nexo.example.com":\n    admin: true\n    allow: [10.0.0.0/8]\n`,
    FILE,
  );
  assert.equal(config.routes[0]?.kind, "admin");
  assertIssue(`proxies:\n  "nexo.example.com":\n    admin: true\n`, {
    line: 2,
    col: 3,
    message: /has admin: true, which serves nexo's dashboard, and the dashboard needs a password: add admin:/,
  });
  assertIssue(
    `${admin}proxies:\n  "nexo.example.com":\n    admin: true\n    upstream: http://127.0.0.1:1\n`,
    {
      line: 7,
      col: 5,
      message: /upstream does not apply to a route with admin: true/,
    },
  );
});
