import assert from "node:assert/strict";
import { parseConfig } from "../config/parse.ts";
import { editRoute, RouteEditError } from "./route_edit.ts";

const CONFIG = `# nexo on the small VPS
email: ops@example.com # for Let's Encrypt
proxies:
  # the wiki
  "wiki.example.com":
    upstream: http://127.0.0.1:3000
    max_body: 50MiB
  old.example.com:
    redirect: https://wiki.example.com
    status: 301

  "api.example.com":
    upstream:
      - http://10.0.0.1:8080
      - http://10.0.0.2:8080
    lb: round_robin
# trailing comment
limits:
  max_body: 10MiB
`;

const hosts = (text: string) => parseConfig(text, "/etc/nexo/config.yaml").routes.map((r) => r.host);

Deno.test("editRoute() adds a route at the end of proxies:, keeping every other line as it was", () => {
  const out = editRoute(CONFIG, {
    action: "set",
    host: "New.Example.com",
    upstream: "http://127.0.0.1:4000",
  });
  assert.deepEqual(hosts(out), ["wiki.example.com", "old.example.com", "api.example.com", "new.example.com"]);
  assert.equal(out.replace(`  "new.example.com":\n    upstream: "http://127.0.0.1:4000"\n`, ""), CONFIG);
});

Deno.test("editRoute() changes where a route goes and keeps its other options", () => {
  const out = editRoute(CONFIG, {
    action: "set",
    host: "wiki.example.com",
    upstream: "http://127.0.0.1:3001",
  });
  assert.equal(out, CONFIG.replace("upstream: http://127.0.0.1:3000", `upstream: "http://127.0.0.1:3001"`));
  const list = editRoute(CONFIG, {
    action: "set",
    host: "api.example.com",
    upstream: "http://10.0.0.3:8080",
  });
  const api = parseConfig(list, "/etc/nexo/config.yaml").routes.find((r) => r.host === "api.example.com")!;
  assert.equal(api.kind === "proxy" && api.upstreams.map((u) => u.href).join(), "http://10.0.0.3:8080/");
  assert.match(list, / {4}upstream: "http:\/\/10\.0\.0\.3:8080"\n {4}lb: round_robin\n# trailing comment/);
  const switched = editRoute(CONFIG, {
    action: "set",
    host: "old.example.com",
    upstream: "http://127.0.0.1:5000",
  });
  assert.match(switched, / {2}"old\.example\.com":\n {4}upstream: "http:\/\/127\.0\.0\.1:5000"\n\n {2}"api/);
  assert.deepEqual(hosts(switched), ["wiki.example.com", "old.example.com", "api.example.com"]);
});

Deno.test("editRoute() removes a route's lines only, and says what it cannot do", () => {
  const out = editRoute(CONFIG, { action: "remove", host: "wiki.example.com" });
  assert.deepEqual(hosts(out), ["old.example.com", "api.example.com"]);
  assert.match(out, /^proxies:\n {2}# the wiki\n {2}old\.example\.com:/m);
  assert.throws(() => editRoute(CONFIG, { action: "remove", host: "nope.example.com" }), RouteEditError);
  assert.throws(
    () =>
      editRoute(`proxies: { "a.example.com": { upstream: "http://x" } }\n`, {
        action: "remove",
        host: "a.example.com",
      }),
    /flow style\) on line 1/,
  );
  assert.throws(
    () => editRoute(CONFIG, { action: "set", host: "<b>", upstream: "http://x" }),
    /not a host name/,
  );
  // A route whose other settings the form would drop is left to the editor.
  const guarded =
    `proxies:\n  "a.example.com":\n    redirect: https://b.example.com\n    allow: [10.0.0.0/8]\n`;
  assert.throws(
    () => editRoute(guarded, { action: "set", host: "a.example.com", upstream: "http://127.0.0.1:1" }),
    /has settings the form does not show/,
  );
  assert.throws(
    () =>
      editRoute(`proxies:\n  "a.example.com": { upstream: "http://x", basic_auth: { users: {} } }\n`, {
        action: "set",
        host: "a.example.com",
        redirect: "https://b.example.com",
      }),
    /written on one line/,
  );
  const fresh = editRoute("email: ops@example.com\n", {
    action: "set",
    host: "a.example.com",
    redirect: "https://b.example.com",
  });
  assert.equal(
    fresh,
    `email: ops@example.com\nproxies:\n  "a.example.com":\n    redirect: "https://b.example.com"\n`,
  );
});
