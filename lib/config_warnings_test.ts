import assert from "node:assert/strict";
import { parseConfig } from "./config/parse.ts";
import { allConfigWarnings, configWarnings } from "./config_warnings.ts";

function warningsFor(limits: string): string[] {
  const config = parseConfig(`proxies:\n  "a.test":\n    upstream: http://127.0.0.1:1\n${limits}`, "/x.yaml");
  return configWarnings(config).map((w) => `${w.key}: ${w.message}`);
}

Deno.test("configWarnings() says nothing about the default limits", () => {
  assert.deepEqual(warningsFor(""), []);
  assert.deepEqual(warningsFor("limits:\n  max_header: 16KiB\n"), []);
});

Deno.test("configWarnings() says which protocol refuses a max_header Deno cannot honour", () => {
  const [h2] = warningsFor("limits:\n  max_header: 32KiB\n");
  assert.match(h2!, /^limits\.max_header: 32768 bytes .*over HTTP\/2 past 16 KiB with a bare 431/);
  assert.doesNotMatch(h2!, /HTTP\/1\.1/);
  const [both] = warningsFor("limits:\n  max_header: 1MiB\n");
  assert.match(both!, /HTTP\/1\.1 Deno refuses heads past 64 KiB with 400, and over HTTP\/2/);
});

Deno.test("configWarnings() says when renew_before cannot apply as written to Let's Encrypt's certificates", () => {
  const config = (renew: string) =>
    parseConfig(
      `acme:\n  renew_before: ${renew}\ncloudflare:\n  api_token: t\nproxies:\n  "a.example.com":\n    upstream: http://127.0.0.1:1\n`,
      "/x.yaml",
    );
  assert.deepEqual(configWarnings(config("720h")), []);
  const [warning] = configWarnings(config("1200h"));
  assert.equal(warning?.key, "acme.renew_before");
  assert.match(
    warning!.message,
    /renew_before 1200h is more than half .* 90-day lifetime; it renews 45 days before/,
  );
});

Deno.test("configWarnings() warns about a long HSTS on a development name, not on real ones", () => {
  const config = parseConfig(
    `proxies:\n  "app.localhost":\n    upstream: http://127.0.0.1:1\n  "dev.localhost":\n    upstream: http://127.0.0.1:1\n    hsts:\n      max_age: 5m\n  "a.example.com":\n    upstream: http://127.0.0.1:1\n`,
    "/x.yaml",
  );
  assert.deepEqual(configWarnings(config).map((w) => w.key), [`proxies."app.localhost".hsts`]);
});

Deno.test("allConfigWarnings() adds a config file holding the token that others can read", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/config.yaml`;
    await Deno.writeTextFile(
      file,
      `cloudflare:\n  api_token: secret-token-value\nproxies:\n  "a.example.com":\n    upstream: http://127.0.0.1:1\n`,
    );
    await Deno.chmod(file, 0o644);
    const config = parseConfig(await Deno.readTextFile(file), file);
    const warnings = await allConfigWarnings(config);
    assert.deepEqual(warnings.map((w) => w.key), ["cloudflare.api_token"]);
    assert.match(warnings[0]!.message, /mode 0644.*chmod 600/);
    assert.ok(!warnings[0]!.message.includes("secret-token-value"));
    await Deno.chmod(file, 0o600);
    assert.deepEqual(await allConfigWarnings(config), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("configWarnings() names a sign-in host no route uses, and GitHub endpoints over plain http", () => {
  const warnings = (yaml: string) =>
    configWarnings(parseConfig(yaml, "/x.yaml")).map((w) => `${w.key}: ${w.message}`);
  const auth = (bases: string) =>
    `auth:\n  host: auth.example.com\n  github: { client_id: a, client_secret: bcdefgh${bases} }\n`;
  const route = `proxies:\n  "a.example.com":\n    upstream: http://127.0.0.1:1\n`;
  assert.deepEqual(warnings(`${auth("")}${route}`), [
    "auth: no route has github_auth, so auth.example.com signs nobody in (add github_auth to a route, or remove auth)",
  ]);
  const guarded = `${route}    github_auth: { allowed_users: [octocat] }\n`;
  assert.deepEqual(warnings(`${auth("")}${guarded}`), []);
  assert.deepEqual(
    warnings(`${auth(", api_base: http://127.0.0.1:9, oauth_base: http://localhost:9")}${guarded}`),
    [],
  );
  assert.deepEqual(warnings(`${auth(", oauth_base: http://ghe.example.com")}${guarded}`), [
    "auth.github.oauth_base: http://ghe.example.com is plain http: the client secret, sign-in codes and tokens " +
    "would cross the network unencrypted (use https)",
  ]);
});

Deno.test("configWarnings() warns that a dashboard on a plain-HTTP address beyond loopback sends its password in clear", () => {
  const hash = "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW";
  const remote = parseConfig(
    `admin:\n  listen: "0.0.0.0:9090"\n  password_hash: "${hash}"\n`,
    "/etc/nexo/config.yaml",
  );
  assert.match(
    configWarnings(remote).map((w) => `${w.key}: ${w.message}`).join("\n"),
    /admin\.listen: 0\.0\.0\.0:9090 is plain HTTP/,
  );
  const local = parseConfig(
    `admin:\n  listen: ":9090"\n  password_hash: "${hash}"\n`,
    "/etc/nexo/config.yaml",
  );
  assert.deepEqual(configWarnings(local).filter((w) => w.key === "admin.listen"), []);
});
