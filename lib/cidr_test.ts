import assert from "node:assert/strict";
import { inCidrs, parseCidr, parseIp } from "./cidr.ts";

Deno.test("inCidrs() matches IPv4 and IPv6 networks and nothing by default", () => {
  const cidrs = ["10.0.0.0/8", "173.245.48.0/20", "2400:cb00::/32", "192.0.2.7"].map(parseCidr);
  assert.equal(inCidrs("10.1.2.3", cidrs), true);
  assert.equal(inCidrs("173.245.63.255", cidrs), true);
  assert.equal(inCidrs("173.245.64.0", cidrs), false);
  assert.equal(inCidrs("2400:cb00:2048:1::6810:1234", cidrs), true);
  assert.equal(inCidrs("2400:cb01::1", cidrs), false);
  assert.equal(inCidrs("192.0.2.7", cidrs), true);
  assert.equal(inCidrs("::ffff:10.9.9.9", cidrs), true, "IPv4-mapped IPv6 counts as IPv4");
  assert.equal(inCidrs("10.1.2.3", []), false);
  assert.equal(inCidrs("not-an-ip", cidrs), false);
});

Deno.test("parseCidr() rejects malformed networks with a clear message", () => {
  for (const bad of ["10.0.0.0/33", "10.0.0/8", "::1/129", "1:2:3", "example.com", "10.0.0.0/"]) {
    assert.throws(() => parseCidr(bad), RangeError, bad);
  }
});

Deno.test("parseIp() expands :: and embedded IPv4", () => {
  assert.deepEqual(parseIp("::1"), new Uint8Array([...new Array(15).fill(0), 1]));
  assert.deepEqual(
    parseIp("[2001:db8::]"),
    new Uint8Array([0x20, 0x01, 0x0d, 0xb8, ...new Array(12).fill(0)]),
  );
  assert.deepEqual(parseIp("::ffff:192.0.2.1"), new Uint8Array([192, 0, 2, 1]));
});
