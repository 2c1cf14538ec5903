import assert from "node:assert/strict";
import { parseConfig } from "./parse.ts";
import { issuesOf } from "./test_helpers.ts";

const FILE = "/srv/nexo/config.yaml";
const AUTH =
  `auth:\n  host: Auth.Example.com\n  github: { client_id: Iv1.abc, client_secret: "0123456789abcdef" }\n`;
const NOTES = `proxies:\n  "notes.example.com":\n    upstream: http://127.0.0.1:4000\n`;

/** The messages `parseConfig()` reports for `yaml`, each with its line and column. */
const messages = (yaml: string) => issuesOf(yaml, FILE).map((i) => `${i.line}:${i.col} ${i.message}`);

Deno.test("auth and github_auth: the sign-in host becomes a route, with GitHub's endpoints and a day's session", () => {
  const config = parseConfig(
    `${AUTH}${NOTES}    github_auth: { allowed_users: [Octocat, "@hubot"] }\n`,
    FILE,
  );
  assert.equal(config.auth?.host, "auth.example.com");
  assert.equal(config.auth?.sessionTtlMs, 24 * 3_600_000);
  assert.deepEqual(
    {
      ...config.auth?.github,
      apiBase: config.auth?.github?.apiBase.href,
      oauthBase: config.auth?.github?.oauthBase.href,
    },
    {
      clientId: "Iv1.abc",
      clientSecret: "0123456789abcdef",
      apiBase: "https://api.github.com/",
      oauthBase: "https://github.com/",
    },
  );
  assert.deepEqual(config.routes[0]!.access?.githubAuth, { allowedUsers: ["octocat", "hubot"] });
  const signIn = config.routes[1]!;
  assert.deepEqual([signIn.kind, signIn.host, signIn.access, signIn.position.line], [
    "sign-in",
    "auth.example.com",
    null,
    1,
  ]);
  assert.equal(signIn.hsts, config.routes[0]!.hsts, "the sign-in host sends the top-level HSTS");
  const local = parseConfig(
    `auth:\n  host: auth.test\n  session_ttl: 1h\n  github:\n    client_id: a\n    client_secret: bcdefgh\n` +
      `    api_base: http://127.0.0.1:9999/api/v3\n    oauth_base: http://127.0.0.1:9999\n${NOTES}`,
    FILE,
  ).auth;
  assert.equal(local?.sessionTtlMs, 3_600_000);
  assert.equal(local?.github?.apiBase.href, "http://127.0.0.1:9999/api/v3");
});

Deno.test("auth and github_auth report what is missing or wrong at its line, with the fix", () => {
  assert.deepEqual(messages(`${NOTES}    github_auth: { allowed_users: [octocat] }\n`), [
    `2:3 proxies."notes.example.com".github_auth needs GitHub sign-in set up at the top level: add auth: ` +
    `{ host: auth.example.com, github: { client_id: "...", client_secret: "..." } }`,
  ]);
  assert.deepEqual(
    messages(`auth:\n  host: auth.example.com\n${NOTES}    github_auth: { allowed_users: [a] }\n`),
    [
      `4:3 proxies."notes.example.com".github_auth needs GitHub sign-in set up at the top level: add ` +
      `auth.github: { client_id: "...", client_secret: "..." }`,
    ],
  );
  assert.deepEqual(messages(`${AUTH}${NOTES}    github_auth: { allowed_users: [] }\n`), [
    '7:35 proxies."notes.example.com".github_auth.allowed_users is empty, which would refuse everyone; list GitHub logins',
  ]);
  assert.deepEqual(messages(`${AUTH}${NOTES}    github_auth: { allowed_users: [octo_cat, -a] }\n`), [
    `7:36 proxies."notes.example.com".github_auth.allowed_users[0] must be a GitHub login (letters, digits and ` +
    `single hyphens, at most 39), got "octo_cat"`,
    `7:46 proxies."notes.example.com".github_auth.allowed_users[1] must be a GitHub login (letters, digits and ` +
    `single hyphens, at most 39), got "-a"`,
  ]);
  assert.deepEqual(messages(`${AUTH}${NOTES}    github_auth: { users: [octocat] }\n`), [
    `7:18 proxies."notes.example.com".github_auth needs allowed_users, the GitHub logins let in, like ` +
    `{ allowed_users: [octocat] }`,
    `7:20 unknown key "users" in proxies."notes.example.com".github_auth (known keys: allowed_users)`,
  ]);
  assert.deepEqual(
    messages(`auth:\n  host: "*.example.com"\n  github: { client_id: a, client_secret: bcdefgh }\n${NOTES}`),
    [`2:9 auth.host must be one host name, like auth.example.com, not a wildcard`],
  );
  assert.deepEqual(messages(`${AUTH}  session_ttl: 10s\n${NOTES}`), [
    "4:16 auth.session_ttl must be at least 1m (a session must outlive its sign-in)",
  ]);
  assert.deepEqual(messages(`auth:\n  github: { client_id: a }\n${NOTES}`), [
    `2:3 auth needs the host that serves sign-in pages, like { host: auth.example.com, github: { client_id: "...", ` +
    `client_secret: "..." } }`,
    `2:11 auth.github needs client_secret, like { client_id: "...", client_secret: "..." } (from ` +
    `https://github.com/settings/developers)`,
  ]);
  assert.deepEqual(
    messages(`${AUTH}proxies:\n  "AUTH.example.com":\n    upstream: http://127.0.0.1:4000\n`),
    [
      `5:3 proxies."auth.example.com" is also auth.host, which serves only nexo's sign-in pages; choose another ` +
      `auth.host (like "auth.auth.example.com") or remove this route`,
    ],
  );
});

Deno.test("the GitHub client secret never appears in a config error", () => {
  const secret = "ghs_0123456789abcdefSECRET";
  for (
    const yaml of [
      `auth:\n  host: a.test\n  github: { client_id: a, client_secret: ${secret}, api_base: ${secret} }\n`,
      `auth:\n  host: a.test\n  github: { client_id: a, client_secret: [${secret}] }\n`,
      `auth:\n  host: a.test\n  github: { client_id: a, client_secret: ${secret}: x }\n`,
    ]
  ) {
    const found = messages(yaml);
    assert.ok(found.length > 0, yaml);
    assert.ok(found.every((message) => !message.includes(secret)), found.join("\n"));
  }
});
