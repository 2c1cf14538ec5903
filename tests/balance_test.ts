// End-to-end: a route with several upstreams, against a real nexo and three real upstream processes
// (tests/named_upstream.ts, which answer with their names): how each `lb` policy shares the requests, an
// upstream killed under continuous load (no failed request, marked down by its checks, back when restarted),
// every upstream down (a clear 502, then recovery), what is never retried, and health kept across a reload.

import assert from "node:assert/strict";
import { connectTls, curl, type NexoProcess, startNexo } from "./harness.ts";
import { closedPort, startEchoUpstream } from "./upstreams.ts";
import { readHead, upgradeRequest } from "./websocket_frames.ts";

const SCRIPT = new URL("./named_upstream.ts", import.meta.url).pathname;

interface NamedUpstream {
  name: string;
  url: string;
  /** Kills the process (SIGKILL: no goodbye to open connections) and waits for it to exit. */
  kill(): Promise<void>;
  /** Starts it again on the same port. */
  restart(): Promise<void>;
  /** Requests seen, by "METHOD /path". */
  stats(): Promise<Record<string, number>>;
}

async function startUpstream(
  name: string,
  options: { flaky?: string; workMs?: number } = {},
): Promise<NamedUpstream> {
  const port = closedPort();
  let child: Deno.ChildProcess;
  const spawn = async () => {
    child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-net",
        SCRIPT,
        name,
        String(port),
        options.flaky ?? "",
        String(options.workMs ?? 0),
      ],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes("ready")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`${name} exited before it was ready`);
      text += value;
    }
    reader.releaseLock();
  };
  await spawn();
  const url = `http://127.0.0.1:${port}`;
  return {
    name,
    url,
    kill: async () => {
      child.kill("SIGKILL");
      await child.status;
      await child.stdout.cancel().catch(() => {});
    },
    restart: spawn,
    stats: async () => await (await fetch(`${url}/stats`)).json(),
  };
}

/** `count` GETs of `path` through nexo on one curl run (one connection): each answer's status and body. */
async function many(
  nexo: NexoProcess,
  host: string,
  path: string,
  count: number,
  args: string[] = [],
): Promise<Array<{ status: number; body: string }>> {
  const url = `https://${host}:${nexo.port}${path}`;
  const output = await new Deno.Command("curl", {
    args: [
      "-sS",
      "--max-time",
      "60",
      "--cacert",
      nexo.rootCert,
      "--resolve",
      `${host}:${nexo.port}:127.0.0.1`,
      "-w",
      "\n@@%{http_code}\n",
      ...args,
      ...Array.from({ length: count }, () => url),
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout);
  return text.split("\n@@").slice(0, count).map((chunk, i) => {
    const body = i === 0 ? chunk : chunk.slice(chunk.indexOf("\n") + 1);
    const status = Number(text.split("\n@@")[i + 1]?.slice(0, 3));
    return { status, body };
  });
}

/** How many answers each body (an upstream's name) got. */
function tally(answers: Array<{ body: string }>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const { body } of answers) counts[body] = (counts[body] ?? 0) + 1;
  return counts;
}

/** /status's upstreams of `host`, by name-less URL. */
async function upstreamStatus(
  adminPort: number,
  host: string,
): Promise<Array<{ url: string; healthy: boolean }>> {
  const status = await (await fetch(`http://127.0.0.1:${adminPort}/status`)).json();
  return status.routes.find((route: { host: string }) => route.host === host).upstreams;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

Deno.test("several upstreams: each lb policy shares requests as its name says", async (t) => {
  // b takes 400 ms for /work, a and c 10 ms.
  const [a, b, c] = await Promise.all(
    ["a", "b", "c"].map((name) => startUpstream(name, { workMs: name === "b" ? 400 : 10 })),
  );
  const list = `[${a!.url}, ${b!.url}, ${c!.url}]`;
  const nexo = await startNexo(`
trusted_proxies: ["127.0.0.1"]
proxies:
  "rr.test":
    upstream: ${list}
  "first.test":
    upstream: ${list}
    lb: first
  "least.test":
    upstream: ${list}
    lb: least_conn
  "hash.test":
    upstream: ${list}
    lb: ip_hash
  "sticky.test":
    upstream: ${list}
    lb: cookie
`);
  try {
    await t.step("round_robin: 300 requests, each upstream within 10% of a third", async () => {
      const answers = await many(nexo, "rr.test", "/", 300);
      assert.ok(answers.every((answer) => answer.status === 200));
      const counts = tally(answers);
      for (const name of ["a", "b", "c"]) {
        assert.ok(Math.abs((counts[name] ?? 0) - 100) <= 10, JSON.stringify(counts));
      }
    });

    await t.step("first: every request to the first upstream while it is healthy", async () => {
      assert.deepEqual(tally(await many(nexo, "first.test", "/", 20)), { a: 20 });
    });

    await t.step("least_conn: the slow upstream gets fewer of the concurrent requests", async () => {
      // Six clients at a time, ten requests each: b holds each of its requests 40 times longer.
      const jobs = Array.from({ length: 6 }, async () => {
        const answers: string[] = [];
        for (let i = 0; i < 10; i++) answers.push((await curl(nexo, "least.test", "/work")).body);
        return answers;
      });
      const counts = tally((await Promise.all(jobs)).flat().map((body) => ({ body })));
      assert.ok(
        (counts["b"] ?? 0) < (counts["a"] ?? 0) && (counts["b"] ?? 0) < (counts["c"] ?? 0),
        JSON.stringify(counts),
      );
    });

    await t.step("ip_hash: a client stays on one upstream, and clients spread over all", async () => {
      const homes = new Set<string>();
      for (let i = 1; i <= 30; i++) {
        const answers = await many(nexo, "hash.test", "/", 4, ["-H", `X-Forwarded-For: 198.51.100.${i}`]);
        const seen = new Set(answers.map((answer) => answer.body));
        assert.equal(seen.size, 1, `client ${i} moved: ${[...seen]}`);
        homes.add([...seen][0]!);
      }
      assert.equal(homes.size, 3, "30 clients reach every upstream");
    });

    await t.step("cookie: a client pinned by its cookie stays; one without it is spread", async () => {
      const dir = await Deno.makeTempDir();
      try {
        const jar = `${dir}/jar`;
        const first = await curl(nexo, "sticky.test", "/", ["-c", jar]);
        assert.match(
          first.headers["set-cookie"] ?? "",
          /^__Host-nexo_lb=[\w-]+; Path=\/; Secure; HttpOnly; SameSite=Lax$/,
        );
        const pinned = tally(await many(nexo, "sticky.test", "/", 30, ["-b", jar]));
        assert.deepEqual(pinned, { [first.body]: 30 });
        assert.equal(Object.keys(tally(await many(nexo, "sticky.test", "/", 30))).length, 3);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  } finally {
    await nexo.stop();
    await Promise.all([a!.kill(), b!.kill(), c!.kill()]);
  }
});

Deno.test("several upstreams: one killed under load, all down, no unsafe retry, health kept across a reload", async (t) => {
  const [a, b, c] = await Promise.all(["a", "b", "c"].map((name) => startUpstream(name, { flaky: "a" })));
  const adminPort = closedPort();
  const routes = (extra: string) => `
admin:
  listen: "127.0.0.1:${adminPort}"
proxies:
  "app.test":
    upstream: [${a!.url}, ${b!.url}, ${c!.url}]
    health_check: { path: /healthz, interval: 1s, timeout: 500ms, healthy_after: 1, unhealthy_after: 2 }
    retry: { tries: 3, on: [connect_error, 503] }
  "other.test":
    upstream: [${a!.url}, ${c!.url}]${extra}
  "flaky.test":
    upstream: [${a!.url}, ${b!.url}]
    passive_health: false
    retry: { tries: 2, on: [503] }
`;
  const nexo = await startNexo(routes(""));
  const healthyOf = async (host: string) =>
    Object.fromEntries((await upstreamStatus(adminPort, host)).map((u) => [new URL(u.url).port, u.healthy]));
  const port = (upstream: NamedUpstream) => new URL(upstream.url).port;
  try {
    await t.step(
      "an upstream killed during continuous load fails no request, and is marked down",
      async () => {
        let stop = false;
        const statuses: number[] = [];
        const load = (async () => {
          while (!stop) {
            statuses.push(...(await many(nexo, "app.test", "/", 10)).map((answer) => answer.status));
          }
        })();
        await new Promise((resolve) => setTimeout(resolve, 500));
        await b!.kill();
        await until("b is marked down", async () => (await healthyOf("app.test"))[port(b!)] === false, 5_000);
        await new Promise((resolve) => setTimeout(resolve, 500));
        stop = true;
        await load;
        assert.ok(statuses.length > 50, `only ${statuses.length} requests`);
        assert.deepEqual(statuses.filter((status) => status !== 200), [], "every request was answered");
        await nexo.waitForLog((line) =>
          line.msg === "upstream down" && line.upstream === `127.0.0.1:${port(b!)}`
        );
        const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
        const series = (name: string, upstream: NamedUpstream) =>
          new RegExp(`${name}\\{route="app\\.test",upstream="${upstream.url}/"\\} (\\d+)`).exec(metrics)?.[1];
        assert.equal(series("nexo_upstream_healthy", b!), "0");
        assert.ok(Number(series("nexo_upstream_failures_total", b!)) >= 1);
        assert.equal(series("nexo_upstream_healthy", a!), "1");
      },
    );

    await t.step("a restarted upstream is brought back by its checks and gets requests again", async () => {
      await b!.restart();
      await until("b is back", async () => (await healthyOf("app.test"))[port(b!)] === true, 5_000);
      await nexo.waitForLog((line) => line.msg === "upstream up");
      assert.ok(tally(await many(nexo, "app.test", "/", 30))["b"]! >= 5);
    });

    await t.step("a reload that changes another route keeps this route's health", async () => {
      await c!.kill();
      await until("c is marked down", async () => (await healthyOf("app.test"))[port(c!)] === false, 5_000);
      await Deno.writeTextFile(
        `${nexo.dir}/config.yaml`,
        (await Deno.readTextFile(`${nexo.dir}/config.yaml`))
          .replace(`upstream: [${a!.url}, ${c!.url}]`, `upstream: [${a!.url}, ${c!.url}]\n    lb: first`),
      );
      await nexo.waitForLog((line) => line.msg === "config reloaded");
      assert.equal((await healthyOf("app.test"))[port(c!)], false, "c is still known to be down");
      await c!.restart();
    });

    await t.step(
      "a 503 is retried on another upstream for a GET and a buffered POST, never for a streamed POST",
      async () => {
        // a answers /flaky with 503, b does not; round robin sends every other request to a first.
        const gets = await many(nexo, "flaky.test", "/flaky", 12);
        assert.deepEqual(gets.filter((answer) => answer.status !== 200), [], "a's 503 was retried elsewhere");
        const posts = await many(nexo, "flaky.test", "/flaky", 12, ["-d", "small=1"]);
        assert.deepEqual(
          posts.filter((answer) => answer.status !== 200),
          [],
          "a buffered POST is sent again",
        );
        const before = (await a!.stats())["POST /flaky"] ?? 0;
        const dir = await Deno.makeTempDir();
        try {
          await Deno.writeFile(`${dir}/big`, new Uint8Array(256 * 1024));
          let refused = 0;
          for (let i = 0; i < 9; i++) {
            // Streamed (chunked, not buffered): once sent, it cannot be sent again.
            const post = await curl(nexo, "flaky.test", "/flaky", [
              "--http1.1",
              "-H",
              "Transfer-Encoding: chunked",
              "--data-binary",
              `@${dir}/big`,
            ]);
            if (post.status === 503) refused++;
            else assert.equal(post.status, 200);
          }
          const seenByA = ((await a!.stats())["POST /flaky"] ?? 0) - before;
          assert.ok(seenByA >= 3, `round robin sent some posts to a (${seenByA})`);
          assert.equal(refused, seenByA, "each post a refused came back as a 503, not retried");
        } finally {
          await Deno.remove(dir, { recursive: true });
        }
      },
    );

    await t.step("every upstream down: a clear 502 and a log line, then recovery", async () => {
      await Promise.all([a!.kill(), b!.kill(), c!.kill()]);
      const down = await curl(nexo, "app.test", "/");
      assert.equal(down.status, 502);
      assert.match(down.body, /could not be reached/);
      await until(
        "all are marked down",
        async () => Object.values(await healthyOf("app.test")).every((h) => !h),
        5_000,
      );
      assert.equal((await curl(nexo, "app.test", "/")).status, 502);
      await nexo.waitForLog((line) => line.msg === "all upstreams down");
      await c!.restart();
      // Before any check brings it back, the least recently failed upstream is still tried.
      await until(
        "a request reaches c",
        async () => (await curl(nexo, "app.test", "/")).status === 200,
        5_000,
      );
      await Promise.all([a!.restart(), b!.restart()]);
    });
  } finally {
    await nexo.stop();
    await Promise.all([a!.kill(), b!.kill(), c!.kill()].map((p) => p.catch(() => {})));
  }
});

Deno.test("lb: cookie pins a WebSocket's page too: the 101 carries the cookie, and a cookie sent picks the upstream", async () => {
  const apps = [startEchoUpstream(), startEchoUpstream()];
  const nexo = await startNexo(`
proxies:
  "ws.test":
    upstream: [${apps[0]!.url}, ${apps[1]!.url}]
    lb: cookie
`);
  const upgrade = async (cookie: string | null) => {
    const conn = await connectTls(nexo, "ws.test");
    try {
      await conn.write(upgradeRequest("ws.test", "/ws", cookie === null ? [] : [`Cookie: ${cookie}`]));
      return (await readHead(conn)).head;
    } finally {
      conn.close();
    }
  };
  try {
    const head = await upgrade(null);
    assert.match(head, /^HTTP\/1\.1 101 /);
    const cookie = /^set-cookie: (__Host-nexo_lb=[\w-]+)/im.exec(head)?.[1];
    assert.ok(cookie !== undefined, head);
    // With the cookie, every upgrade goes to the same app, and no new cookie is set.
    const before = apps.map((app) => app.seen.filter((s) => s.path === "/ws").length);
    for (let i = 0; i < 6; i++) assert.doesNotMatch(await upgrade(cookie), /set-cookie/i);
    const added = apps.map((app, i) => app.seen.filter((s) => s.path === "/ws").length - before[i]!);
    assert.deepEqual(added.sort(), [0, 6], `upgrades per app: ${added}`);
  } finally {
    await nexo.stop();
    await Promise.all(apps.map((app) => app.close()));
  }
});
