import assert from "node:assert/strict";
import { isCloudflareEdge, isPublicAddress, judgeAddresses } from "./addresses.ts";

const HERE = ["127.0.0.1", "10.0.0.4", "203.0.113.5", "::1", "2001:db8::5", "fe80::1"];
const http = { machine: HERE, challenge: "http-01" as const };
const dns = { machine: HERE, challenge: "dns-01" as const };

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
  assert.equal(judgeAddresses("a.example.com", ["203.0.113.5", "2001:db8::5"], http).status, "ok");
  const away = judgeAddresses("a.example.com", ["198.51.100.9"], http);
  assert.equal(away.status, "problem");
  assert.equal(away.fix, "point the A record of a.example.com to 203.0.113.5");
  assert.match(away.message, /not this machine \(203\.0\.113\.5, 2001:db8::5\)/);
  assert.equal(judgeAddresses("a.example.com", ["198.51.100.9"], dns).status, "warning");
  assert.equal(judgeAddresses("a.example.com", [], http).status, "problem");
  assert.equal(judgeAddresses("a.example.com", [], dns).status, "warning");
});

Deno.test("judgeAddresses(): an AAAA left pointing elsewhere is named by type", () => {
  const stale = judgeAddresses("a.example.com", ["203.0.113.5", "2001:db8::99"], http);
  assert.equal(stale.status, "problem");
  assert.equal(stale.fix, "remove the record AAAA 2001:db8::99 of a.example.com");
});

Deno.test("judgeAddresses(): a private address of this machine passes only with a private CA", () => {
  const lan = judgeAddresses("a.example.com", ["10.0.0.4"], http);
  assert.equal(lan.status, "problem");
  assert.match(lan.message, /10\.0\.0\.4 is a private address no one on the Internet can reach/);
  assert.equal(judgeAddresses("a.example.com", ["10.0.0.4"], { ...http, privateCa: true }).status, "ok");
  assert.equal(judgeAddresses("a.example.com", ["127.0.0.1"], { ...http, privateCa: true }).status, "ok");
});

Deno.test("judgeAddresses(): behind NAT it cannot tell, per address family, and says what to forward", () => {
  const nat = judgeAddresses("a.example.com", ["198.51.100.9"], {
    machine: ["127.0.0.1", "10.0.0.4"],
    challenge: "http-01",
  });
  assert.equal(nat.status, "warning");
  assert.match(nat.message, /no public address of that kind/);
  assert.equal(nat.fix, "make sure 198.51.100.9 forwards TCP 443 and 80 to this machine");
  // A cloud VPS: public IPv6 on the interface, IPv4 by 1:1 NAT. A right AAAA and an A doctor cannot see.
  const cloud = judgeAddresses("a.example.com", ["198.51.100.9", "2001:db8::5"], {
    machine: ["10.0.0.4", "2001:db8::5"],
    challenge: "http-01",
  });
  assert.equal(cloud.status, "warning", JSON.stringify(cloud));
  assert.match(cloud.fix ?? "", /198\.51\.100\.9 forwards/);
});

Deno.test("judgeAddresses(): Cloudflare's proxy is a warning for HTTP-01 and fine for DNS-01", () => {
  const proxied = new Set(["a.example.com"]);
  const orange = judgeAddresses("a.example.com", ["198.51.100.9"], { ...http, proxied });
  assert.equal(orange.status, "warning");
  assert.match(orange.message, /Always Use HTTPS/);
  assert.equal(judgeAddresses("a.example.com", ["104.16.0.1"], dns).status, "ok");
});
