// The fake Cloudflare API answers the way the real one is documented (or reported) to: these tests pin the
// behaviours the provider's tests rely on, so a change to the fake cannot quietly make them meaningless.

import assert from "node:assert/strict";
import { startFakeCloudflare } from "./fake_cloudflare.ts";
import { startChallTestSrv } from "./challtestsrv.ts";

const TOKEN = "fake-test-token";

async function call(
  url: string,
  init: RequestInit = {},
): Promise<{ status: number; body: { success: boolean; errors: Array<{ code: number }>; result: unknown } }> {
  const response = await fetch(url, init);
  return { status: response.status, body: await response.json() };
}

Deno.test("fake Cloudflare refuses a missing, malformed or wrong token with Cloudflare's codes", async () => {
  await using fake = await startFakeCloudflare({ token: TOKEN, zones: ["example.com"] });
  const missing = await call(`${fake.apiBase}/zones`);
  assert.deepEqual([missing.status, missing.body.success, missing.body.errors[0]?.code], [400, false, 9106]);
  const malformed = await call(`${fake.apiBase}/zones`, { headers: { authorization: "Token x" } });
  assert.deepEqual([malformed.status, malformed.body.errors[0]?.code], [400, 6003]);
  const wrong = await call(`${fake.apiBase}/zones`, { headers: { authorization: "Bearer nope" } });
  assert.deepEqual([wrong.status, wrong.body.errors[0]?.code, wrong.body.result], [403, 9109, null]);
  const verify = await call(`${fake.apiBase}/user/tokens/verify`, {
    headers: { authorization: "Bearer nope" },
  });
  assert.deepEqual([verify.status, verify.body.errors[0]?.code], [401, 1000]);
});

Deno.test("fake Cloudflare refuses a DELETE with a Content-Type but no body, and an identical record", async () => {
  await using fake = await startFakeCloudflare({ token: TOKEN, zones: ["example.com"] });
  const headers = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
  const records = `${fake.apiBase}/zones/${fake.zoneId("example.com")}/dns_records`;
  const body = JSON.stringify({ type: "TXT", name: "_acme-challenge", content: "v", ttl: 120 });
  const created = await call(records, { method: "POST", headers, body });
  assert.equal(created.status, 200);
  assert.equal((created.body.result as { name: string }).name, "_acme-challenge.example.com");
  const again = await call(records, { method: "POST", headers, body });
  assert.deepEqual([again.status, again.body.errors[0]?.code], [400, 81058]);
  const id = (created.body.result as { id: string }).id;
  const withType = await call(`${records}/${id}`, { method: "DELETE", headers });
  assert.deepEqual([withType.status, withType.body.errors[0]?.code], [400, 6007]);
  const bare = await call(`${records}/${id}`, {
    method: "DELETE",
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  assert.deepEqual([bare.status, bare.body.result], [200, { id }]);
  const gone = await call(`${records}/${id}`, {
    method: "DELETE",
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  assert.deepEqual([gone.status, gone.body.errors[0]?.code], [404, 81044]);
});

Deno.test("fake Cloudflare deletes one TXT value from challtestsrv and keeps the other on that name", async () => {
  await using dns = await startChallTestSrv();
  await using fake = await startFakeCloudflare({ token: TOKEN, zones: ["example.com"], challtestsrv: dns });
  const first = await fake.addRecord("example.com", { name: "_acme-challenge.example.com", content: "one" });
  await fake.addRecord("example.com", { name: "_acme-challenge.example.com", content: "two" });
  assert.deepEqual((await dns.txtValues("_acme-challenge.example.com")).sort(), ["one", "two"]);
  const response = await fetch(`${fake.apiBase}/zones/${first.zone_id}/dns_records/${first.id}`, {
    method: "DELETE",
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  await response.body?.cancel();
  assert.equal(response.status, 200);
  assert.deepEqual(await dns.txtValues("_acme-challenge.example.com"), ["two"]);
});

Deno.test("fake Cloudflare answers matching requests with an outage's failure until it ends, and can keep records off DNS", async () => {
  await using dns = await startChallTestSrv();
  await using fake = await startFakeCloudflare({ token: TOKEN, zones: ["example.com"], challtestsrv: dns });
  const headers = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
  const records = `${fake.apiBase}/zones/${fake.zoneId("example.com")}/dns_records`;
  const body = JSON.stringify({ type: "TXT", name: "_acme-challenge", content: "v", ttl: 120 });
  fake.startOutage({ status: 503 }, (request) => request.method === "POST");
  const refused = await call(records, { method: "POST", headers, body });
  assert.deepEqual([refused.status, refused.body.errors[0]?.code], [503, 10002]);
  assert.equal((await call(records, { headers })).status, 200, "requests outside the outage are served");
  fake.endOutage();

  await fake.setPublishing(false);
  assert.equal((await call(records, { method: "POST", headers, body })).status, 200);
  assert.equal(fake.records().length, 1, "the record is stored");
  assert.deepEqual(await dns.txtValues("_acme-challenge.example.com"), [], "but not served over DNS");
  await fake.setPublishing(true);
  assert.deepEqual(await dns.txtValues("_acme-challenge.example.com"), ["v"]);
});
