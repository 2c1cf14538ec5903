import assert from "node:assert/strict";
import { isCloudflareEdge, isPublicAddress, judgeAddresses } from "./addresses.ts";

const HERE = ["127.0.0.1", "203.0.113.5", "::1", "2001:db8::5", "fe80::1"];

Deno.test("isPublicAddress() and isCloudflareEdge() classify addresses", () => {
  for (
    const a of [
      "10.1.2.3",
      "172.16.0.1",
      "192.168.1.1",
      "100.64.0.1",
      "127.0.0.1",
      "::1",
      "fd00::1",
      "fe80::1",
    ]
  ) {
    assert.equal(isPublicAddress(a), false, a);
  }
  for (const a of ["203.0.113.5", "8.8.8.8", "2001:db8::5"]) assert.equal(isPublicAddress(a), true, a);
  assert.ok(isCloudflareEdge("104.16.0.1") && isCloudflareEdge("2606:4700::1"));
  assert.ok(!isCloudflareEdge("203.0.113.5"));
});

Deno.test("judgeAddresses(): here is ok; elsewhere is a problem for HTTP-01 and a warning for DNS-01", () => {
  const http = { machine: HERE, challenge: "http-01" as const };
  const dns = { machine: HERE, challenge: "dns-01" as const };
  assert.equal(judgeAddresses("a.example.com", ["203.0.113.5", "2001:db8::5"], http).status, "ok");
  const away = judgeAddresses("a.example.com", ["198.51.100.9"], http);
  assert.equal(away.status, "problem");
  assert.equal(away.fix, "point the A record of a.example.com to 203.0.113.5");
  assert.match(away.message, /not to this machine \(203\.0\.113\.5, 2001:db8::5\)/);
  assert.equal(judgeAddresses("a.example.com", ["198.51.100.9"], dns).status, "warning");
  assert.equal(judgeAddresses("a.example.com", [], http).status, "problem");
  assert.equal(judgeAddresses("a.example.com", [], dns).status, "warning");
});

Deno.test("judgeAddresses(): an AAAA left pointing elsewhere is named by type", () => {
  const stale = judgeAddresses("a.example.com", ["203.0.113.5", "2001:db8::99"], {
    machine: HERE,
    challenge: "http-01",
  });
  assert.equal(stale.status, "problem");
  assert.match(stale.fix ?? "", /remove the record AAAA 2001:db8::99/);
});

Deno.test("judgeAddresses(): behind NAT it cannot tell, and says what to forward", () => {
  const nat = judgeAddresses("a.example.com", ["198.51.100.9"], {
    machine: ["127.0.0.1", "10.0.0.4"],
    challenge: "http-01",
  });
  assert.equal(nat.status, "warning");
  assert.match(nat.message, /only private addresses/);
  assert.equal(nat.fix, "make sure 198.51.100.9 forwards TCP 443 and 80 to this machine");
});

Deno.test("judgeAddresses(): Cloudflare's proxy fails HTTP-01 and is fine for DNS-01", () => {
  const proxied = new Set(["a.example.com"]);
  assert.equal(
    judgeAddresses("a.example.com", ["198.51.100.9"], { machine: HERE, challenge: "http-01", proxied })
      .status,
    "problem",
  );
  assert.equal(
    judgeAddresses("a.example.com", ["104.16.0.1"], { machine: HERE, challenge: "dns-01" }).status,
    "ok",
  );
});
