import assert from "node:assert/strict";
import { pickUpstream } from "./pick.ts";
import { UpstreamHealth } from "./upstream_health.ts";

const members = ["a", "b", "c"].map((name) => new UpstreamHealth(new URL(`http://${name}:80`), null, null));
const [a, b, c] = members as [UpstreamHealth, UpstreamHealth, UpstreamHealth];
const context = (turn: number, extra: { client?: string; pinned?: UpstreamHealth | null } = {}) => ({
  client: extra.client ?? "192.0.2.1",
  pinned: extra.pinned ?? null,
  turn,
});

Deno.test("pickUpstream: round_robin takes turns, first takes the first, none gives null", () => {
  assert.deepEqual([0, 1, 2, 3].map((turn) => pickUpstream("round_robin", members, context(turn))), [
    a,
    b,
    c,
    a,
  ]);
  assert.equal(pickUpstream("first", [b, c], context(7)), b);
  assert.equal(pickUpstream("round_robin", [], context(0)), null);
});

Deno.test("pickUpstream: least_conn takes the fewest in flight, and takes turns among ties", () => {
  a.inFlight = 2;
  b.inFlight = 0;
  c.inFlight = 0;
  assert.deepEqual([0, 1].map((turn) => pickUpstream("least_conn", members, context(turn))), [b, c]);
  a.inFlight = b.inFlight = c.inFlight = 0;
});

Deno.test("pickUpstream: ip_hash keeps a client on one upstream, and moves only the clients of one that leaves", () => {
  const clients = Array.from({ length: 200 }, (_, i) => `198.51.100.${i % 250}.${i}`);
  const home = new Map(
    clients.map((client) => [client, pickUpstream("ip_hash", members, context(0, { client }))]),
  );
  for (const client of clients) {
    assert.equal(pickUpstream("ip_hash", members, context(9, { client })), home.get(client));
  }
  const spread = new Set(home.values());
  assert.equal(spread.size, 3);
  for (const client of clients) {
    const without = pickUpstream("ip_hash", [a, c], context(0, { client }));
    if (home.get(client) !== b) assert.equal(without, home.get(client), "a client of a or c did not move");
  }
});

Deno.test("pickUpstream: cookie keeps the pinned upstream while it is a candidate", () => {
  assert.equal(pickUpstream("cookie", members, context(0, { pinned: c })), c);
  assert.equal(pickUpstream("cookie", [a, b], context(1, { pinned: c })), b, "pinned one out: taken in turn");
});
