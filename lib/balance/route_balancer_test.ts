import assert from "node:assert/strict";
import { parseConfig } from "../config/parse.ts";
import type { Balancing, ProxyRoute } from "../config/types.ts";
import { Logger } from "../log.ts";
import type { Attempt, DispatchContext } from "../proxy/forward.ts";
import { UpstreamError, type UpstreamResponse } from "../proxy/upstream_client.ts";
import { RouteBalancer } from "./route_balancer.ts";
import { UpstreamHealth } from "./upstream_health.ts";

/** A balancer for a route written as YAML route fields, and the log lines it writes. */
function balancerFor(fields: string) {
  const route = parseConfig(`proxies:\n  "app.test":\n${fields}`, "/x.yaml").routes[0] as ProxyRoute & {
    balancing: Balancing;
  };
  const members = route.upstreams.map((url) =>
    new UpstreamHealth(url, route.balancing.healthCheck, route.balancing.passiveHealth)
  );
  const lines: string[] = [];
  const sink = { writeSync: (p: Uint8Array) => (lines.push(new TextDecoder().decode(p)), p.length) };
  const log = new Logger({ format: "json", sink });
  return {
    balancer: new RouteBalancer(route, members, { ids: members.map((_, i) => `id${i}`), log }),
    members,
    lines,
  };
}

const answer = (status: number): UpstreamResponse => ({
  status,
  statusText: "",
  headers: [],
  body: null,
  hasBody: false,
  contentLength: null,
  bytes: () => Promise.resolve(new Uint8Array()),
});

/** An attempt that answers by upstream host ("a" -> 503 ...), recording where each try went. */
function attempts(outcomes: Record<string, number | "refused" | "timeout" | "reset">) {
  const seen: string[] = [];
  const attempt: Attempt = (upstream) => {
    seen.push(upstream.hostname);
    const outcome = outcomes[upstream.hostname] ?? 200;
    if (outcome === "refused") {
      return Promise.reject(new UpstreamError("connect", `cannot connect to ${upstream.host}`));
    }
    if (outcome === "reset") {
      return Promise.reject(
        new UpstreamError("reset", `${upstream.host} closed the connection before answering`),
      );
    }
    if (outcome === "timeout") {
      return Promise.reject(new UpstreamError("timeout", `${upstream.host} too slow`));
    }
    return Promise.resolve(answer(outcome));
  };
  return { attempt, seen };
}

const context = (extra: Partial<DispatchContext> = {}): DispatchContext => ({
  method: "GET",
  replayable: true,
  untouched: () => true,
  timeoutMs: 5_000,
  ...extra,
});

Deno.test("RouteBalancer retries a connection failure on another upstream, up to tries", async () => {
  const { balancer } = balancerFor(
    "    upstream: [http://a, http://b, http://c]\n    retry: { tries: 2 }\n    lb: first\n",
  );
  const { attempt, seen } = attempts({ a: "refused", b: "refused" });
  await assert.rejects(balancer.dispatcher("192.0.2.1", [])(attempt, context()), /cannot connect to b/);
  assert.deepEqual(seen, ["a", "b"], "two tries in all, each on another upstream");
  const ok = attempts({ a: "refused" });
  const dispatched = await balancer.dispatcher("192.0.2.1", [])(ok.attempt, context());
  assert.equal(dispatched.response.status, 200);
  assert.notEqual(ok.seen[1], ok.seen[0]);
});

Deno.test("RouteBalancer tries a lone upstream again, and never re-sends a streamed body after it was sent", async () => {
  const lone =
    balancerFor("    upstream: http://a\n    retry: { tries: 3, on: [connect_error, 503] }\n").balancer;
  const refused = attempts({ a: "refused" });
  await assert.rejects(lone.dispatcher("192.0.2.1", [])(refused.attempt, context()));
  assert.deepEqual(refused.seen, ["a", "a", "a"]);
  const busy = attempts({ a: 503 });
  const streamed = await lone.dispatcher("192.0.2.1", [])(
    busy.attempt,
    context({ method: "POST", replayable: false }),
  );
  assert.deepEqual([streamed.response.status, busy.seen], [503, ["a"]], "the 503 stands for a streamed body");
  const read = attempts({ a: "refused" });
  const touched = context({ method: "POST", replayable: false, untouched: () => false });
  await assert.rejects(lone.dispatcher("192.0.2.1", [])(read.attempt, touched));
  assert.deepEqual(read.seen, ["a"], "a body already read is not sent again, even after a failed connect");
});

Deno.test("RouteBalancer retries a connection broken before the answer only for idempotent methods", async () => {
  const { balancer } = balancerFor("    upstream: [http://a, http://b]\n    lb: first\n");
  const get = attempts({ a: "reset" });
  assert.equal((await balancer.dispatcher("192.0.2.1", [])(get.attempt, context())).response.status, 200);
  assert.deepEqual(get.seen, ["a", "b"], "the default retry (connect_error) covers it");
  const post = attempts({ a: "reset" });
  await assert.rejects(
    balancer.dispatcher("192.0.2.1", [])(post.attempt, context({ method: "POST" })),
    /closed the connection/,
  );
  assert.deepEqual(post.seen, ["a"], "a POST may have reached the app: never sent twice");
  const streamed = attempts({ a: "reset" });
  await assert.rejects(
    balancer.dispatcher("192.0.2.1", [])(streamed.attempt, context({ method: "PUT", replayable: false })),
    /closed the connection/,
  );
  assert.deepEqual(streamed.seen, ["a"], "a streamed body cannot be sent again");
});

Deno.test("RouteBalancer retries a timeout only for idempotent methods", async () => {
  const { balancer } = balancerFor(
    "    upstream: [http://a, http://b]\n    retry: { tries: 2, on: [timeout] }\n    lb: first\n",
  );
  const get = attempts({ a: "timeout" });
  assert.equal((await balancer.dispatcher("192.0.2.1", [])(get.attempt, context())).response.status, 200);
  assert.deepEqual(get.seen, ["a", "b"]);
  const post = attempts({ a: "timeout" });
  await assert.rejects(
    balancer.dispatcher("192.0.2.1", [])(post.attempt, context({ method: "POST" })),
    /too slow/,
  );
  assert.deepEqual(post.seen, ["a"]);
});

Deno.test("RouteBalancer rests a failing upstream, and with all out tries the one that failed longest ago", async () => {
  const { balancer, members, lines } = balancerFor(
    "    upstream: [http://a, http://b]\n    passive_health: { max_fails: 1, fail_window: 1m }\n    retry: false\n",
  );
  const failing = attempts({ a: "refused", b: "refused" });
  for (let i = 0; i < 2; i++) {
    await assert.rejects(balancer.dispatcher("192.0.2.1", [])(failing.attempt, context()));
  }
  assert.deepEqual(members.map((m) => m.healthy(Date.now())), [false, false]);
  await new Promise((resolve) => setTimeout(resolve, 5));
  const { attempt, seen } = attempts({});
  assert.equal((await balancer.dispatcher("192.0.2.1", [])(attempt, context())).response.status, 200);
  assert.deepEqual(seen, [failing.seen[0]], "the first to fail is the least recent failure");
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.ok(lines.some((line) => line.includes('"all upstreams down"')), lines.join(""));
  assert.equal(lines.join("").split('"upstream down"').length - 1, 2, "each upstream's rest logged once");
});

Deno.test("RouteBalancer counts requests in flight until released, for least_conn", async () => {
  const { balancer, members } = balancerFor("    upstream: [http://a, http://b]\n    lb: least_conn\n");
  const { attempt } = attempts({});
  const first = await balancer.dispatcher("192.0.2.1", [])(attempt, context());
  const second = await balancer.dispatcher("192.0.2.1", [])(attempt, context());
  assert.notEqual(first.upstream.href, second.upstream.href);
  assert.deepEqual(members.map((m) => m.inFlight), [1, 1]);
  first.release();
  first.release();
  assert.equal(members.reduce((n, m) => n + m.inFlight, 0), 1, "released once, however often called");
});
