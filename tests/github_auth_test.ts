// End-to-end: `github_auth` against a real nexo, a local fake GitHub (tests/fake_github.ts) and curl as the
// browser (its own cookie engine, which keeps "__Host-" cookies only as browsers do). Covers an allowlisted
// user in, another user refused, forged and replayed state and tickets, expired and tampered sessions,
// spoofed identity headers, sign-out, GitHub down, and an event stream and a WebSocket through the route.

import assert from "node:assert/strict";
import { TokenSigner } from "../lib/access/signed_token.ts";
import { FakeGitHub } from "./fake_github.ts";
import { connectTls, curl, type NexoProcess, startNexo } from "./harness.ts";
import { closedPort, startEchoUpstream } from "./upstreams.ts";
import { upgradeRequest } from "./websocket_frames.ts";

const CLIENT_ID = "Iv1.testclientid";
const CLIENT_SECRET = "s3cr3t-client-secret-value";

const atCallback = (next: URL) => next.pathname === "/oauth2/callback";

interface Hop {
  url: string;
  status: number;
  /** Lowercased names; repeated fields joined with ", ". */
  headers: Record<string, string>;
  body: string;
}

/** A browser: curl with a cookie jar, following redirects one hop at a time so every hop can be checked. */
class Browser {
  readonly jar: string;
  constructor(private readonly nexo: NexoProcess, dir: string, name: string) {
    this.jar = `${dir}/${name}.cookies`;
  }

  /**
   * One request: to nexo through harness.ts's curl (its hosts resolved to 127.0.0.1, TLS verified against
   * its root) with this browser's cookie jar; to the fake GitHub (plain http, no cookies) with fetch.
   */
  async get(url: string, args: string[] = []): Promise<Hop> {
    const target = new URL(url);
    if (target.protocol === "http:") {
      const response = await fetch(url, { redirect: "manual" });
      return {
        url,
        status: response.status,
        headers: Object.fromEntries(response.headers),
        body: await response.text(),
      };
    }
    const jar = ["-b", this.jar, "-c", this.jar, "--max-time", "30"];
    const result = await curl(this.nexo, target.hostname, target.pathname + target.search, [...jar, ...args]);
    assert.equal(result.code, 0, `curl ${url}: ${result.stderr}`);
    return { url, status: result.status, headers: result.headers, body: result.body };
  }

  /** Follows redirects from `url` (at most 8), returning every hop. */
  async follow(url: string): Promise<Hop[]> {
    return (await this.followUntil(url, () => false)).hops;
  }

  /**
   * Follows redirects from `url` until the next one would go where `stop` says: the hops so far, and that
   * next URL (not requested), or null when the chain ended first.
   */
  async followUntil(
    url: string,
    stop: (next: URL) => boolean,
  ): Promise<{ hops: Hop[]; next: string | null }> {
    const hops: Hop[] = [];
    let next: string | null = url;
    while (next !== null && hops.length < 8) {
      if (stop(new URL(next))) return { hops, next };
      const hop = await this.get(next);
      hops.push(hop);
      const location = hop.headers["location"];
      next = hop.status >= 300 && hop.status < 400 && location !== undefined
        ? new URL(location, next).href
        : null;
    }
    return { hops, next };
  }

  /** The jar's value of cookie `name` for `host`, or null. */
  async cookie(host: string, name: string): Promise<string | null> {
    const text = await Deno.readTextFile(this.jar).catch(() => "");
    for (const line of text.split("\n")) {
      const fields = line.replace(/^#HttpOnly_/, "").split("\t");
      if (fields[0] === host && fields[5] === name) return fields[6] ?? null;
    }
    return null;
  }
}

Deno.test("github_auth signs allowlisted GitHub users in through the sign-in host and keeps everyone else out", async (t) => {
  const app = startEchoUpstream();
  const adminPort = closedPort();
  const dir = await Deno.makeTempDir({ prefix: "nexo-github-" });
  // GitHub's registered callback names nexo's port, so nexo listens on one chosen first.
  const port = closedPort();
  const github = new FakeGitHub({
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    callback: `https://auth.test:${port}/oauth2/callback`,
  });
  const nexo = await startNexo(
    `
listen: "127.0.0.1:${port}"
admin:
  listen: "127.0.0.1:${adminPort}"
auth:
  host: auth.test
  github:
    client_id: ${CLIENT_ID}
    client_secret: ${CLIENT_SECRET}
    api_base: ${github.url}
    oauth_base: ${github.url}
proxies:
  "notes.test":
    upstream: ${app.url}
    github_auth: { allowed_users: [octocat, Hubot] }
  "open.test":
    upstream: ${app.url}
`,
    { dir },
  );
  const notes = `https://notes.test:${port}`;
  try {
    await t.step("an allowlisted user goes to GitHub and back, then reaches the app as itself", async () => {
      github.signedInAs = "octocat";
      const browser = new Browser(nexo, dir, "octocat");
      const hops = await browser.follow(`${notes}/page?x=1`);
      assert.deepEqual(hops.map((hop) => [new URL(hop.url).host, new URL(hop.url).pathname, hop.status]), [
        [`notes.test:${port}`, "/page", 302],
        [`auth.test:${port}`, "/oauth2/start", 302],
        [new URL(github.url).host, "/login/oauth/authorize", 302],
        [`auth.test:${port}`, "/oauth2/callback", 302],
        [`notes.test:${port}`, "/.nexo/auth/session", 302],
        [`notes.test:${port}`, "/page", 200],
      ]);
      // GitHub was asked for no scope, with the registered callback, and nexo traded the code with its secret.
      const authorize = new URL(hops[2]!.url);
      assert.equal(authorize.searchParams.get("redirect_uri"), `https://auth.test:${port}/oauth2/callback`);
      assert.equal(authorize.searchParams.get("scope"), null);
      assert.equal(github.exchanges.at(-1)?.get("client_secret"), CLIENT_SECRET);
      // The session cookie is host-only, Secure, HttpOnly, and lives for session_ttl (24h by default).
      const setCookie = hops[4]!.headers["set-cookie"];
      assert.match(setCookie ?? "", /^__Host-nexo_session=/);
      assert.match(setCookie ?? "", /; Path=\/; Max-Age=86400; Secure; HttpOnly; SameSite=Lax$/);
      const seen = app.seen.at(-1)!;
      assert.equal(seen.path, "/page");
      assert.equal(seen.headers["x-forwarded-user"], "octocat");
      assert.ok(!(seen.headers["cookie"] ?? "").includes("nexo_session"), "the app never sees the session");

      // Later requests go straight through, and a client's own X-Forwarded-User does not pass as the user.
      const again = await browser.get(`${notes}/again`, [
        "-H",
        "X-Forwarded-User: admin",
        "-H",
        "Cookie: a=1",
      ]);
      assert.equal(again.status, 200);
      assert.equal(app.seen.at(-1)!.headers["x-forwarded-user"], "octocat");
      assert.equal(app.seen.at(-1)!.headers["cookie"], "a=1");
      const log = await nexo.waitForLog((line) => line.msg === "signed in");
      assert.deepEqual([log.host, log.user], ["notes.test", "octocat"]);
    });

    await t.step("allowed_users is matched case-insensitively, as GitHub logins are", async () => {
      github.signedInAs = "hubot";
      const hops = await new Browser(nexo, dir, "hubot").follow(`${notes}/`);
      assert.equal(hops.at(-1)!.status, 200);
    });

    await t.step("a GitHub user not on the list gets a clear 403 and no session", async () => {
      github.signedInAs = "mallory";
      const browser = new Browser(nexo, dir, "mallory");
      const before = app.seen.length;
      const hops = await browser.follow(`${notes}/secret`);
      const last = hops.at(-1)!;
      assert.equal(last.status, 403);
      assert.match(last.body, /signed in with GitHub as mallory, who may not reach notes\.test/);
      assert.equal(await browser.cookie("notes.test", "__Host-nexo_session"), null);
      assert.equal(app.seen.length, before, "the app was never reached");
      await nexo.waitForLog((line) => line.msg === "sign-in refused" && line.user === "mallory");
    });

    await t.step("a callback this browser did not start is refused (forged or missing state)", async () => {
      github.signedInAs = "octocat";
      // The attacker starts a sign-in in their own browser and stops at GitHub's redirect to the callback...
      const attacker = new Browser(nexo, dir, "attacker");
      const toCallback = (await attacker.followUntil(`${notes}/`, atCallback)).next!;
      // ...and has the victim's browser open it: the victim has no state cookie for it.
      const victim = new Browser(nexo, dir, "victim");
      const forged = await victim.get(toCallback);
      assert.equal(forged.status, 400);
      assert.match(forged.body, /not started in this browser/);
      assert.equal(await victim.cookie("notes.test", "__Host-nexo_session"), null);
      // A state that does not match the attacker's own cookie fails too.
      const tampered = new URL(toCallback);
      tampered.searchParams.set("state", tampered.searchParams.get("state")!.slice(0, 8) + "A".repeat(14));
      assert.equal((await attacker.get(tampered.href)).status, 400);
      // The attacker's own, untampered callback still works in the attacker's own browser: the refusals
      // above were for the state, not for the code.
      assert.equal((await attacker.follow(toCallback)).at(-1)!.status, 200);
    });

    await t.step("a ticket is good once, and only on the host it was made for", async () => {
      github.signedInAs = "octocat";
      const browser = new Browser(nexo, dir, "replay");
      const hops = await browser.follow(`${notes}/`);
      const ticketUrl = hops.find((hop) => hop.url.includes("/.nexo/auth/session"))!.url;
      const replay = await new Browser(nexo, dir, "thief").get(ticketUrl);
      assert.equal(replay.status, 400);
      assert.match(replay.body, /expired or was used already/);
      const elsewhere = ticketUrl.replace("notes.test", "open.test");
      assert.equal(
        (await new Browser(nexo, dir, "thief2").get(elsewhere)).status,
        200,
        "open.test is not guarded",
      );
    });

    await t.step("an expired, tampered or other host's session is no session", async () => {
      const signer = await TokenSigner.create(
        Uint8Array.fromBase64((await Deno.readTextFile(`${dir}/auth/session.key`)).trim()),
      );
      const hour = 3_600_000;
      const withSession = async (payload: Record<string, string | number>) => {
        const cookie = await signer.sign(payload);
        return await new Browser(nexo, dir, "minted").get(`${notes}/minted`, [
          "-H",
          `Cookie: __Host-nexo_session=${cookie}`,
        ]);
      };
      const fresh = { k: "session", u: "octocat", h: "notes.test", i: Date.now() - hour };
      assert.equal((await withSession(fresh)).status, 200, "a session minted with the key is accepted");
      assert.equal((await withSession({ ...fresh, i: Date.now() - 25 * hour })).status, 302, "expired");
      assert.equal((await withSession({ ...fresh, h: "open.test" })).status, 302, "for another host");
      assert.equal((await withSession({ ...fresh, k: "ticket" })).status, 302, "another kind of token");
      const forged = (await signer.sign(fresh)).replace(
        /^[^.]+/,
        btoa(JSON.stringify({ ...fresh, u: "Hubot" })),
      );
      const tampered = await new Browser(nexo, dir, "forged").get(`${notes}/`, [
        "-H",
        `Cookie: __Host-nexo_session=${forged}`,
      ]);
      assert.equal(tampered.status, 302);
    });

    await t.step(
      "requests that cannot follow a redirect get 401; an event stream and a WebSocket pass with a session",
      async () => {
        const anonymous = new Browser(nexo, dir, "anonymous");
        const post = await anonymous.get(`${notes}/form`, ["-X", "POST", "-d", "a=1"]);
        assert.equal(post.status, 401);
        assert.match(post.headers["www-authenticate"] ?? "", /^GitHub realm="notes\.test"/);

        github.signedInAs = "octocat";
        const browser = new Browser(nexo, dir, "streams");
        await browser.follow(`${notes}/`);
        const stream = await browser.get(`${notes}/sse?n=3&gap=50`);
        assert.equal(stream.status, 200);
        assert.equal([...stream.body.matchAll(/data: event/g)].length, 3);

        const session = await browser.cookie("notes.test", "__Host-nexo_session");
        const open = async (cookie: string | null) => {
          const conn = await connectTls(nexo, "notes.test");
          await conn.write(
            upgradeRequest("notes.test", "/ws", cookie ? [`Cookie: __Host-nexo_session=${cookie}`] : []),
          );
          const buffer = new Uint8Array(4096);
          const n = await conn.read(buffer);
          conn.close();
          return new TextDecoder().decode(buffer.subarray(0, n ?? 0));
        };
        assert.match(await open(session), /^HTTP\/1\.1 101/);
        assert.match(await open(null), /^HTTP\/1\.1 401/);
      },
    );

    await t.step("signing out ends the session on that host", async () => {
      github.signedInAs = "octocat";
      const browser = new Browser(nexo, dir, "signout");
      await browser.follow(`${notes}/`);
      assert.equal((await browser.get(`${notes}/`)).status, 200);
      const out = await browser.get(`${notes}/.nexo/auth/sign-out`);
      assert.equal(out.status, 200);
      assert.match(out.body, /signed out of notes\.test/);
      assert.equal((await browser.get(`${notes}/`)).status, 302);
    });

    await t.step("the sign-in host sends nobody to a site that is not behind github_auth", async () => {
      const browser = new Browser(nexo, dir, "redirects");
      for (const rd of ["https://evil.test/", `https://open.test:${port}/`, "javascript:alert(1)"]) {
        const start = await browser.get(
          `https://auth.test:${port}/oauth2/start?rd=${encodeURIComponent(rd)}`,
        );
        assert.equal(start.status, 400, rd);
      }
      assert.equal((await browser.get(`https://auth.test:${port}/`)).status, 404);
      const post = await browser.get(`https://auth.test:${port}/oauth2/callback`, [
        "-X",
        "POST",
        "-d",
        "a=1",
      ]);
      assert.deepEqual([post.status, post.headers["allow"]], [405, "GET, HEAD"]);
    });

    await t.step(
      "declining on GitHub or GitHub being down is a clear page, and no secret reaches the log",
      async () => {
        github.signedInAs = "octocat";
        github.approves = false;
        const declined = await new Browser(nexo, dir, "declined").follow(`${notes}/`);
        assert.equal(declined.at(-1)!.status, 403);
        assert.match(declined.at(-1)!.body, /access_denied/);
        github.approves = true;

        const browser = new Browser(nexo, dir, "down");
        const toCallback = (await browser.followUntil(`${notes}/`, atCallback)).next!;
        await github.close();
        const down = await browser.get(toCallback);
        assert.equal(down.status, 502);
        assert.match(down.body, /GitHub did not confirm the sign-in/);
        await nexo.waitForLog((line) => line.msg === "github sign-in failed");
        assert.ok(!nexo.output().includes(CLIENT_SECRET), "the client secret is never logged");
        assert.ok(!nexo.output().includes(new URL(toCallback).searchParams.get("code")!), "nor the code");
      },
    );

    await t.step("a reload that takes a user off the list shuts their session out at once", async () => {
      const hubot = new Browser(nexo, dir, "hubot");
      assert.equal((await hubot.get(`${notes}/`)).status, 200);
      const file = `${dir}/config.yaml`;
      await Deno.writeTextFile(
        file,
        (await Deno.readTextFile(file)).replace("[octocat, Hubot]", "[octocat]"),
      );
      await nexo.waitForLog((line) => line.msg === "config reloaded");
      const refused = await hubot.get(`${notes}/`);
      assert.equal(refused.status, 403);
      assert.match(refused.body, /signed in with GitHub as hubot, who may not reach this site/);
      assert.equal(
        (await new Browser(nexo, dir, "octocat").get(`${notes}/`)).status,
        200,
        "sessions outlive reloads",
      );
    });

    await t.step("each refusal is counted by route and reason", async () => {
      const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
      for (
        const [route, reason] of [
          ["notes.test", "sign-in required"],
          ["auth.test", "user not allowed"],
          ["auth.test", "bad state"],
          ["notes.test", "bad ticket"],
          ["auth.test", "auth unavailable"],
        ]
      ) {
        assert.match(
          metrics,
          new RegExp(`nexo_access_refused_total\\{route="${route}",reason="${reason}"\\} [1-9]`),
        );
      }
    });
  } finally {
    await nexo.stop();
    await github.close().catch(() => {});
    await app.close();
    await Deno.remove(dir, { recursive: true });
  }
});
