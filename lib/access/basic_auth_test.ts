import assert from "node:assert/strict";
import { bcryptHash } from "../auth/bcrypt.ts";
import { BasicAuthGuard, challenge, decodeCredentials } from "./basic_auth.ts";

const basic = (user: string, password: string) =>
  `Basic ${btoa(String.fromCharCode(...new TextEncoder().encode(`${user}:${password}`)))}`;

Deno.test("decodeCredentials() reads RFC 7617 credentials: UTF-8 user, password after the first colon", () => {
  assert.deepEqual(decodeCredentials(basic("alice", "a:b:c")), {
    user: "alice",
    password: new TextEncoder().encode("a:b:c"),
  });
  assert.equal(decodeCredentials(basic("zoë", "x"))?.user, "zoë");
  assert.equal(decodeCredentials(`basic ${btoa("bob:pw")}`)?.user, "bob");
  assert.equal(decodeCredentials(basic("", "pw"))?.user, "");
  for (
    const bad of ["Basic", "Basic !!!", `Basic ${btoa("no-colon")}`, `Bearer ${btoa("a:b")}`, "Basic YQ=x"]
  ) {
    assert.equal(decodeCredentials(bad), null, bad);
  }
  assert.equal(challenge("admin"), `Basic realm="admin", charset="UTF-8"`);
});

Deno.test("BasicAuthGuard checks with bcrypt once per remembered login, and every wrong one", async () => {
  const guard = new BasicAuthGuard({
    users: { alice: await bcryptHash("right", 4) },
    realm: "r",
    passCredentials: false,
  });
  assert.equal(await guard.check(null, 0), "no credentials");
  assert.equal(await guard.check("Basic %%", 0), "malformed credentials");
  for (let i = 0; i < 50; i++) assert.equal(await guard.check(basic("alice", "right"), 1_000 + i), null);
  assert.equal(guard.stats.checks, 1, "a page with 50 assets costs one bcrypt check");
  assert.equal(await guard.check(basic("alice", "wrong"), 2_000), "wrong credentials");
  assert.equal(await guard.check(basic("alice", "wrong"), 2_000), "wrong credentials");
  assert.equal(guard.stats.checks, 3, "wrong passwords are never remembered");
  // An unknown user costs a check too (a decoy hash), so timing does not tell which users exist.
  assert.equal(await guard.check(basic("mallory", "right"), 2_000), "wrong credentials");
  assert.equal(guard.stats.checks, 4);
  // After five minutes the login is checked again.
  assert.equal(await guard.check(basic("alice", "right"), 1_000 + 5 * 60_000 + 1), null);
  assert.equal(guard.stats.checks, 5);
});

Deno.test("BasicAuthGuard runs at most two bcrypt checks at once; the rest wait their turn", async () => {
  const guard = new BasicAuthGuard({
    users: { alice: await bcryptHash("right", 6) },
    realm: "r",
    passCredentials: false,
  });
  const results = await Promise.all(
    Array.from({ length: 8 }, (_, i) => guard.check(basic("alice", `wrong ${i}`), 0)),
  );
  assert.ok(results.every((result) => result === "wrong credentials"));
  assert.deepEqual(guard.stats, { checks: 8, peakRunning: 2 });
});
