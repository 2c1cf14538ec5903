// The dashboard on the admin listener, driven over HTTP as a browser would (cookies kept by hand): sign-in,
// the page and its data, the security rules (wrong password, lockout, missing and forged CSRF tokens, a foreign
// Host, a session after sign-out, markup in what is echoed), and /status and /metrics on an address other
// machines reach; and a real headless Chromium signing in, reading the page and signing out, with screenshots
// (into $NEXO_SCREENSHOTS when set: the README's come from there).

import assert from "node:assert/strict";
import { bcryptHash } from "../lib/auth/bcrypt.ts";
import { servedFingerprint, startAcmeWorld } from "./acme_world.ts";
import { Cdp } from "./cdp.ts";
import { connectTls, curl, type NexoProcess, startNexo } from "./harness.ts";
import { closedPort, startEchoUpstream } from "./upstreams.ts";

const PASSWORD = "correct horse battery staple";
const METRICS_TOKEN = "prometheus-scrape-token-4f3e2d1c";

/** A client of one listener that keeps its cookies, as a browser does, and never follows redirects. */
class Browser {
  readonly cookies = new Map<string, string>();
  constructor(readonly base: string) {}

  async request(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.cookies.size > 0) {
      headers.set("cookie", [...this.cookies].map(([name, value]) => `${name}=${value}`).join("; "));
    }
    const response = await fetch(this.base + path, { ...init, headers, redirect: "manual" });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(";");
      const [name, value] = [pair!.slice(0, pair!.indexOf("=")), pair!.slice(pair!.indexOf("=") + 1)];
      if (value === "" || /Max-Age=0/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return response;
  }

  /** GET /login, then POST it with the form's CSRF token; the response to the POST. */
  async signIn(username: string, password: string): Promise<Response> {
    const form = await (await this.request("/login")).text();
    const csrf = /name="csrf" value="([^"]+)"/.exec(form)?.[1] ?? "";
    return await this.post("/login", { csrf, username, password });
  }

  post(path: string, fields: Record<string, string>): Promise<Response> {
    return this.request(path, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(fields).toString(),
    });
  }
}

/**
 * The status line of GET /status sent with `host` as its Host header, as a page on a rebound DNS name makes
 * it (fetch sets Host itself, so this writes the request by hand).
 */
async function rawHead(port: number, host: string, cookie: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(
      new TextEncoder().encode(
        `GET /status HTTP/1.1\r\nHost: ${host}\r\nCookie: ${cookie}\r\nConnection: close\r\n\r\n`,
      ),
    );
    const buffer = new Uint8Array(1024);
    const n = await conn.read(buffer);
    return new TextDecoder().decode(buffer.subarray(0, n ?? 0));
  } finally {
    conn.close();
  }
}

/** The upstream URL of the config's first route. */
function upstreamOf(config: string): string {
  return /upstream: (\S+)/.exec(config)![1]!;
}

async function startWithDashboard(
  listen: string,
): Promise<{ nexo: NexoProcess; port: number; stop(): Promise<void> }> {
  const app = startEchoUpstream();
  const port = closedPort();
  const hash = await bcryptHash(PASSWORD, 4);
  const nexo = await startNexo(`
admin:
  listen: "${listen}:${port}"
  password_hash: "${hash}"
  metrics_token: ${METRICS_TOKEN}
proxies:
  "app.test":
    upstream: ${app.url}
`);
  await nexo.waitForLog((l) => l.msg === "listening" && l.protocol === "admin");
  return {
    nexo,
    port,
    stop: async () => {
      await nexo.stop();
      await app.close();
    },
  };
}

Deno.test("dashboard: sign-in, the page and its data, CSRF on every change, sign-out ends the session", async () => {
  const { nexo, port, stop } = await startWithDashboard("127.0.0.1");
  try {
    const browser = new Browser(`http://127.0.0.1:${port}`);
    const first = await browser.request("/");
    assert.equal(first.status, 303);
    assert.equal(first.headers.get("location"), "/login");
    await first.body?.cancel();

    const login = await browser.request("/login");
    assert.equal(login.status, 200);
    const csp = login.headers.get("content-security-policy") ?? "";
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline/);
    assert.equal(login.headers.get("x-frame-options"), "DENY");
    assert.match(
      login.headers.getSetCookie().join("\n"),
      /nexo_login=[^;]+; Path=\/; HttpOnly; SameSite=Strict/,
    );
    assert.doesNotMatch(
      await login.text(),
      /<script>|<style|\sstyle=|\son[a-z]+=/i,
      "no inline script or style",
    );

    const noCsrf = await browser.post("/login", { username: "admin", password: PASSWORD });
    assert.equal(noCsrf.status, 403, "a sign-in without the form's token is refused");
    await noCsrf.body?.cancel();
    const forged = await browser.post("/login", {
      csrf: "forged-token",
      username: "admin",
      password: PASSWORD,
    });
    assert.equal(forged.status, 403);
    await forged.body?.cancel();
    assert.equal(browser.cookies.has("nexo_session"), false);

    const wrong = await browser.signIn("<script>alert(1)</script>", "wrong password");
    assert.equal(wrong.status, 401);
    const wrongPage = await wrong.text();
    assert.match(wrongPage, /Wrong user name or password\./);
    assert.doesNotMatch(wrongPage, /<script>alert/, "the echoed user name is escaped");
    assert.match(wrongPage, /&#60;script&#62;alert\(1\)&#60;\/script&#62;/);

    const signedIn = await browser.signIn("admin", PASSWORD);
    assert.equal(signedIn.status, 303);
    assert.equal(signedIn.headers.get("location"), "/");
    assert.match(
      signedIn.headers.getSetCookie().join("\n"),
      /nexo_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict/,
    );
    await signedIn.body?.cancel();

    const page = await browser.request("/");
    assert.equal(page.status, 200);
    const pageText = await page.text();
    const csrf = /<meta name="csrf-token" content="([^"]+)">/.exec(pageText)?.[1];
    assert.ok(csrf, "the page carries its CSRF token");
    assert.match(pageText, /<script type="module" src="\/assets\/dashboard\.js"><\/script>/);
    const script = await browser.request("/assets/dashboard.js");
    assert.match(script.headers.get("content-type") ?? "", /text\/javascript/);
    const scriptText = await script.text();
    assert.doesNotMatch(
      scriptText,
      /innerHTML|insertAdjacentHTML|document\.write/,
      "data never becomes markup",
    );
    const overview = await browser.request("/api/overview");
    assert.equal(overview.status, 200);
    const data = await overview.json();
    assert.deepEqual(data.status.routes.map((r: { host: string }) => r.host), ["app.test"]);
    assert.ok(data.memory.rss > 0);
    assert.equal((await browser.request("/status")).status, 200);

    const cookieLine = `nexo_session=${browser.cookies.get("nexo_session")}`;
    assert.match(
      await rawHead(port, "rebound.example.com", cookieLine),
      /^HTTP\/1\.1 421 /,
      "a foreign Host gets nothing",
    );
    assert.match(await rawHead(port, `localhost:${port}`, cookieLine), /^HTTP\/1\.1 200 /);

    const sessionCookie = browser.cookies.get("nexo_session")!;
    const logoutNoToken = await browser.post("/logout", {});
    assert.equal(logoutNoToken.status, 403);
    await logoutNoToken.body?.cancel();
    const logoutForged = await browser.post("/logout", { csrf: "x".repeat(43) });
    assert.equal(logoutForged.status, 403);
    await logoutForged.body?.cancel();
    const logout = await browser.post("/logout", { csrf });
    assert.equal(logout.status, 303);
    await logout.body?.cancel();
    const replayed = new Browser(`http://127.0.0.1:${port}`);
    replayed.cookies.set("nexo_session", sessionCookie);
    const after = await replayed.request("/api/overview");
    assert.equal(after.status, 401, "the session ended on the server, not only in the browser");
    await after.body?.cancel();
    assert.ok(nexo.logs.some((l) => l.msg === "dashboard sign-in failed"));
    assert.doesNotMatch(nexo.output(), new RegExp(PASSWORD), "the password is never logged");
  } finally {
    await stop();
  }
});

Deno.test("dashboard: five wrong passwords lock the address out, even for the right one", async () => {
  const { port, stop } = await startWithDashboard("127.0.0.1");
  try {
    const browser = new Browser(`http://127.0.0.1:${port}`);
    for (let i = 1; i <= 4; i++) {
      const response = await browser.signIn("admin", `wrong ${i}`);
      assert.equal(response.status, 401);
      await response.body?.cancel();
    }
    const fifth = await browser.signIn("admin", "wrong 5");
    assert.equal(fifth.status, 429);
    assert.match(await fifth.text(), /Too many failed sign-ins from your address: try again in 15 minutes\./);
    const right = await browser.signIn("admin", PASSWORD);
    assert.equal(right.status, 429, "locked out: the right password is not even checked");
    assert.ok(Number(right.headers.get("retry-after")) > 800);
    await right.body?.cancel();
    assert.equal(browser.cookies.has("nexo_session"), false);
  } finally {
    await stop();
  }
});

Deno.test("admin on an address other machines reach: /status needs a session, /metrics a session or the token", async () => {
  const { port, stop } = await startWithDashboard("0.0.0.0");
  try {
    const anonymous = new Browser(`http://127.0.0.1:${port}`);
    for (const path of ["/status", "/metrics", "/api/overview"]) {
      const response = await anonymous.request(path);
      assert.equal(response.status, 401, path);
      await response.body?.cancel();
    }
    const scrape = await anonymous.request("/metrics", {
      headers: { authorization: `Bearer ${METRICS_TOKEN}` },
    });
    assert.equal(scrape.status, 200);
    assert.match(await scrape.text(), /nexo_requests_in_flight/);
    const wrongToken = await anonymous.request("/status", {
      headers: { authorization: `Bearer ${METRICS_TOKEN}` },
    });
    assert.equal(wrongToken.status, 401, "the metrics token opens /metrics only");
    await wrongToken.body?.cancel();
    const browser = new Browser(`http://127.0.0.1:${port}`);
    const signedIn = await browser.signIn("admin", PASSWORD);
    await signedIn.body?.cancel();
    const status = await browser.request("/status");
    assert.equal(status.status, 200);
    assert.equal((await status.json()).routes[0].host, "app.test");
  } finally {
    await stop();
  }
});

Deno.test("dashboard in Chromium: sign in, the routes and a certificate's expiry, sign out, no CSP violation", async () => {
  const { nexo, port, stop } = await startWithDashboard("127.0.0.1");
  const shots = Deno.env.get("NEXO_SCREENSHOTS") ?? await Deno.makeTempDir({ prefix: "nexo-shots-" });
  await Deno.mkdir(shots, { recursive: true });
  const browser = await Cdp.launch();
  try {
    // A first handshake for app.test: the local CA mints its certificate, which the page then shows.
    const conn = await connectTls(nexo, "app.test");
    await conn.handshake();
    conn.close();

    await browser.navigate(`http://127.0.0.1:${port}/`);
    assert.equal(await browser.evaluate<string>("() => location.pathname"), "/login");
    await browser.screenshot(`${shots}/login.png`);
    await browser.andWaitForLoad(`(password) => {
      document.querySelector("[name=username]").value = "admin";
      document.querySelector("[name=password]").value = password;
      document.querySelector("form").submit();
    }`.replace("(password)", `(password = ${JSON.stringify(PASSWORD)})`));
    assert.equal(await browser.evaluate<string>("() => location.pathname"), "/");
    const route = await browser.waitFor<string[]>(
      `() => { const row = document.querySelector("#routes tbody tr"); return row && [...row.cells].map((c) => c.textContent); }`,
    );
    assert.equal(route[0], "app.test");
    assert.match(route[1]!, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    assert.match(route[2]!, /^app\.test \(\d+ days\)$/, "the certificate covering it, with days left");
    const certificate = await browser.waitFor<string[]>(
      `() => { const row = document.querySelector("#certificates tbody tr"); return row && [...row.cells].map((c) => c.textContent); }`,
    );
    assert.equal(certificate[0], "app.test");
    assert.equal(certificate[1], "internal");
    assert.match(certificate[2]!, /^\d{4}-\d{2}-\d{2}$/, "its expiry date");
    assert.match(certificate[3]!, /^\d+$/, "days left");
    assert.match(
      await browser.evaluate<string>(`() => document.getElementById("summary").textContent`),
      /^nexo /,
    );

    // The request counter moves while a client sends requests (the page refreshes itself every 5 s).
    const counted = () => `() => Number(document.querySelector("#routes tbody tr").cells[3].textContent)`;
    const before = await browser.evaluate<number>(counted());
    for (let i = 0; i < 20; i++) assert.equal((await curl(nexo, "app.test", `/page/${i}`)).status, 200);
    const after = await browser.waitFor<number>(
      `() => { const n = (${counted()})(); return n >= ${before + 20} && n; }`,
      15_000,
    );
    assert.ok(after >= before + 20, `the counter moved from ${before} to ${after}`);
    const health = await browser.waitFor<string[]>(
      `() => { const cells = [...document.querySelector("#routes tbody tr").cells].map((c) => c.textContent); return cells[7] === "answering" && cells; }`,
      15_000,
    );
    assert.match(health[6]!, /^\d+ \/ \d+ ms$/, "p50 / p99 of the route");
    const charted = await browser.waitFor<string>(
      `() => { const c = document.querySelector("#traffic figcaption"); return c && /^app\\.test: \\d+ requests/.test(c.textContent) && c.textContent; }`,
      15_000,
    );
    assert.match(charted, /^app\.test: (\d+) requests, \d+ KiB in the last hour; p50 \d+ ms, p99 \d+ ms/);
    assert.ok(
      await browser.evaluate<number>(`() => document.querySelectorAll("#traffic svg rect").length`) >= 2,
      "the hour and the day are drawn",
    );
    await browser.waitFor<string>(
      `() => document.querySelector("#routes tbody tr").cells[4].textContent`,
      15_000,
    );

    // Markup in a request path reaches the page as text, never as an element.
    const tls = await connectTls(nexo, "app.test");
    await tls.write(new TextEncoder().encode(
      "GET /<img/src=x/onerror=window.__xss=1> HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n",
    ));
    await tls.readable.pipeTo(new WritableStream()).catch(() => {});
    const shown = await browser.waitFor<string>(
      `() => [...document.querySelectorAll("#requests tbody td")].map((td) => td.textContent).find((t) => t.includes("onerror"))`,
      15_000,
    );
    assert.match(shown, /img/);
    assert.equal(await browser.evaluate<number>(`() => document.querySelectorAll("main img").length`), 0);
    assert.equal(await browser.evaluate<unknown>("() => window.__xss ?? null"), null);
    assert.ok(
      await browser.evaluate<boolean>(`() => document.querySelectorAll("#log tbody tr").length > 0`),
      "the log lines are shown",
    );
    await browser.screenshot(`${shots}/overview.png`);
    await browser.evaluate(`() => document.getElementById("traffic").parentElement.scrollIntoView()`);
    await browser.screenshot(`${shots}/traffic.png`);
    await browser.evaluate(`() => window.scrollTo(0, 0)`);

    // A route added through the form is written into the config, applied live, and served.
    const configPath = `${nexo.dir}/config.yaml`;
    await browser.evaluate(`() => {
      const form = document.getElementById("route-form");
      form.host.value = "added.test";
      form.kind.value = "upstream";
      form.target.value = "${upstreamOf(await Deno.readTextFile(configPath))}";
      form.requestSubmit();
    }`);
    await nexo.waitForLog((l) => l.msg === "route changed from the dashboard", 10_000);
    await nexo.waitForLog((l) => l.msg === "config reloaded" && String(l.added) === "added.test", 10_000);
    assert.equal((await curl(nexo, "added.test", "/")).status, 200, "the new route is served");
    await browser.waitFor<boolean>(
      `() => [...document.querySelectorAll("#routes tbody tr")].some((row) => row.cells[0].textContent === "added.test")`,
      15_000,
    );

    // An invalid config typed in the editor: the message at its line, and nothing written.
    const written = await Deno.readTextFile(configPath);
    const message = await browser.evaluate<string>(`async () => {
      const textarea = document.getElementById("config-text");
      for (let i = 0; i < 50 && !textarea.value.includes("added.test"); i++) await new Promise((r) => setTimeout(r, 100));
      textarea.value = textarea.value.replace('"added.test":', '"added.test":\\n    colour: blue');
      document.getElementById("config-save").click();
      for (let i = 0; i < 50; i++) {
        const item = document.querySelector("#config-issues li");
        if (item) return item.textContent;
        await new Promise((r) => setTimeout(r, 100));
      }
      return "";
    }`);
    const line = written.split("\n").findIndex((l) => l.includes('"added.test":')) + 2;
    assert.match(message, new RegExp(`^line ${line}, column 5: .*colour`), message);
    const selected = await browser.evaluate<string>(
      `() => { const t = document.getElementById("config-text"); return t.value.slice(t.selectionStart, t.selectionEnd); }`,
    );
    assert.equal(selected, "    colour: blue", "the editor selects the line the message is about");
    assert.equal(await Deno.readTextFile(configPath), written, "an invalid config is never written");

    // Markup in a route name comes back in the message as text.
    const markup = await browser.evaluate<{ text: string; elements: number }>(`async () => {
      const textarea = document.getElementById("config-text");
      textarea.value = textarea.value.replace("    colour: blue\\n", "").replace('"added.test":', '"<b>bold</b>.test":');
      document.getElementById("config-save").click();
      for (let i = 0; i < 50; i++) {
        const item = document.querySelector("#config-issues li");
        if (item && item.textContent.includes("bold")) {
          return { text: item.textContent, elements: document.querySelectorAll("#config-issues b").length };
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      return { text: "", elements: -1 };
    }`);
    assert.match(markup.text, /<b>bold<\/b>\.test/, "the route name is shown as written");
    assert.equal(markup.elements, 0, "and not as markup");
    assert.equal(await Deno.readTextFile(configPath), written);
    await browser.screenshot(`${shots}/config.png`);

    await browser.andWaitForLoad(`() => document.querySelector("form.logout").submit()`);
    assert.equal(await browser.evaluate<string>("() => location.pathname"), "/login");
    await browser.navigate(`http://127.0.0.1:${port}/`);
    assert.equal(await browser.evaluate<string>("() => location.pathname"), "/login", "signed out for good");
    // The one failed request was the invalid config's save (422), which the page reported as it should.
    const unexpected = browser.errors.filter((e) => !/status of 422 \(Unprocessable Entity\)/.test(e.text));
    assert.deepEqual(unexpected, [], "no script error and no Content-Security-Policy violation");
  } finally {
    await browser.close();
    await stop();
    if (!Deno.env.get("NEXO_SCREENSHOTS")) await Deno.remove(shots, { recursive: true });
  }
});

Deno.test("dashboard: renew now goes through the scheduler: one order, the new certificate served, nothing twice", async () => {
  const host = "renew.example.com";
  const world = await startAcmeWorld(host, 3600);
  const port = closedPort();
  const nexo = await startNexo(
    `admin:\n  listen: "127.0.0.1:${port}"\n  password_hash: "${await bcryptHash(
      PASSWORD,
      4,
    )}"\n${world.config}`,
  );
  try {
    await nexo.waitForLog((l) => l.msg === "certificate installed", 60_000);
    const first = await servedFingerprint(nexo, host, world.rootPem);
    const browser = new Browser(`http://127.0.0.1:${port}`);
    await (await browser.signIn("admin", PASSWORD)).body?.cancel();
    const csrf = /<meta name="csrf-token" content="([^"]+)">/.exec(
      await (await browser.request("/")).text(),
    )![1]!;
    const renew = (names: string[], token = csrf) =>
      browser.request("/api/renew", {
        method: "POST",
        headers: { "content-type": "application/json", "x-csrf-token": token },
        body: JSON.stringify({ names }),
      });
    const forged = await renew([host], "forged");
    assert.equal(forged.status, 403, "no change without the session's CSRF token");
    await forged.body?.cancel();
    const unknown = await renew(["other.example.com"]);
    assert.equal(unknown.status, 404);
    await unknown.body?.cancel();

    const queued = await renew([host]);
    assert.equal(queued.status, 202);
    await queued.body?.cancel();
    await nexo.waitForLog((l) => l.msg === "certificate job started" && l.job === 2, 10_000);
    const again = await renew([host]);
    assert.ok([202, 409].includes(again.status), `a second click while it runs: ${again.status}`);
    await again.body?.cancel();
    // Done while the job ran: nothing more (409). After it ended: one more renewal, queued (202).
    const expected = again.status === 409 ? 2 : 3;
    const installs = () => nexo.logs.filter((l) => l.msg === "certificate installed").length;
    const deadline = Date.now() + 60_000;
    while (installs() < expected) {
      assert.ok(
        Date.now() < deadline,
        `${installs()} of ${expected} certificates installed\n${nexo.output()}`,
      );
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const orders = nexo.logs.filter((l) => l.msg === "certificate order started").length;
    assert.equal(orders, expected, "one order per renewal asked for, none twice");
    assert.notEqual(
      await servedFingerprint(nexo, host, world.rootPem),
      first,
      "the renewed certificate is served",
    );
  } finally {
    await nexo.stop();
    await world.stop();
  }
});

Deno.test("dashboard: admin.traffic_file keeps the traffic history across a restart, written 0600", async () => {
  const app = startEchoUpstream();
  const dir = await Deno.makeTempDir({ prefix: "nexo-traffic-" });
  const port = closedPort();
  const config =
    `admin:\n  listen: "127.0.0.1:${port}"\n  password_hash: "${await bcryptHash(PASSWORD, 4)}"\n` +
    `  traffic_file: traffic.json\nproxies:\n  "app.test":\n    upstream: ${app.url}\n`;
  const requestsInHistory = async () => {
    const browser = new Browser(`http://127.0.0.1:${port}`);
    await (await browser.signIn("admin", PASSWORD)).body?.cancel();
    const data = await (await browser.request("/api/overview")).json();
    const minutes = data.history["app.test"]?.minutes ?? [];
    return minutes.reduce((n: number, m: { requests: number }) => n + m.requests, 0);
  };
  try {
    const first = await startNexo(config, { dir });
    try {
      await first.waitForLog((l) => l.msg === "listening" && l.protocol === "admin");
      for (let i = 0; i < 7; i++) assert.equal((await curl(first, "app.test", "/")).status, 200);
      assert.equal(await requestsInHistory(), 7);
    } finally {
      assert.equal(await first.stop(), 0);
    }
    assert.equal((await Deno.stat(`${dir}/traffic.json`)).mode! & 0o777, 0o600);
    const second = await startNexo(config, { dir });
    try {
      await second.waitForLog((l) => l.msg === "listening" && l.protocol === "admin");
      assert.equal(await requestsInHistory(), 7, "the last hour came back after the restart");
    } finally {
      await second.stop();
    }
  } finally {
    await app.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dashboard on a route (admin: true): over HTTPS with the host's certificate, Secure cookies, /status behind sign-in", async () => {
  const app = startEchoUpstream();
  const jar = await Deno.makeTempFile({ suffix: ".cookies" });
  const nexo = await startNexo(`
admin:
  listen: "127.0.0.1:${closedPort()}"
  password_hash: "${await bcryptHash(PASSWORD, 4)}"
proxies:
  "dash.test":
    admin: true
  "app.test":
    upstream: ${app.url}
`);
  try {
    const login = await curl(nexo, "dash.test", "/login", ["-c", jar]);
    assert.equal(login.status, 200);
    assert.match(
      login.headers["set-cookie"] ?? "",
      /nexo_login=[^;]+; Path=\/; HttpOnly; SameSite=Strict; Max-Age=600; Secure/,
    );
    assert.match(login.headers["strict-transport-security"] ?? "", /max-age=/);
    const csrf = /name="csrf" value="([^"]+)"/.exec(login.body)![1]!;
    assert.equal((await curl(nexo, "dash.test", "/status")).status, 401, "public: /status needs a session");
    assert.equal((await curl(nexo, "dash.test", "/metrics")).status, 401);
    const form = `csrf=${csrf}&username=admin&password=${encodeURIComponent(PASSWORD)}`;
    const signedIn = await curl(nexo, "dash.test", "/login", ["-b", jar, "-c", jar, "--data", form]);
    assert.equal(signedIn.status, 303);
    assert.match(
      signedIn.headers["set-cookie"] ?? "",
      /nexo_session=[^;]+; Path=\/; HttpOnly; SameSite=Strict; Secure/,
    );
    const status = await curl(nexo, "dash.test", "/status", ["-b", jar]);
    assert.equal(status.status, 200);
    assert.deepEqual(JSON.parse(status.body).routes, [{ host: "dash.test", admin: true }, {
      host: "app.test",
      upstream: `${app.url}/`,
    }]);
    assert.equal((await curl(nexo, "dash.test", "/", ["-b", jar])).status, 200);
    const proxied = await curl(nexo, "app.test", "/hello");
    assert.equal(proxied.status, 200, `other routes proxy as before: ${proxied.stderr} ${proxied.body}`);
  } finally {
    await nexo.stop();
    await app.close();
    await Deno.remove(jar);
  }
});
