import assert from "node:assert/strict";
import { isIP } from "node:net";
import { ipVersion, isIpv4Address, isIpv6Address } from "./ip_address.ts";

/** Addresses and near misses, each judged by node:net's isIP as the reference. */
const CASES = [
  // IPv4
  "0.0.0.0",
  "127.0.0.1",
  "255.255.255.255",
  "192.0.2.1",
  "256.0.0.1",
  "1.2.3",
  "1.2.3.4.5",
  "01.2.3.4",
  "1.2.3.04",
  "1.2.3.4 ",
  " 1.2.3.4",
  "1..3.4",
  "1.2.3.",
  "a.b.c.d",
  "1.2.3.4%eth0",
  "+1.2.3.4",
  "1e1.2.3.4",
  "",
  // IPv6
  "::",
  "::1",
  "1::",
  "2606:4700::1111",
  "2001:db8:0:0:0:0:2:1",
  "2001:DB8::ABCD",
  "1:2:3:4:5:6:7:8",
  "1:2:3:4:5:6:7::",
  "::2:3:4:5:6:7:8",
  "1:2:3:4:5:6:7:8:9",
  "1:2:3:4:5:6:7",
  "1:2:3:4:5:6:7::8",
  "::1:2:3:4:5:6:7:8",
  "1::2::3",
  ":::",
  ":1:2:3:4:5:6:7",
  "1:2:3:4:5:6:7:",
  "12345::1",
  "g::1",
  "::ffff:192.0.2.1",
  "::192.0.2.1",
  "64:ff9b::192.0.2.33",
  "1:2:3:4:5:6:1.2.3.4",
  "1:2:3:4:5:6:7:1.2.3.4",
  "1:2:3:4:5::1.2.3.4",
  "1:2:3:4:5:6::1.2.3.4",
  "::1.2.3.4:5",
  "::256.1.1.1",
  "::01.2.3.4",
  "1.2.3.4::",
  "fe80::1%eth0",
  "fe80::1%25",
  "fe80::1%en0.1:x-y",
  "fe80::1%",
  "fe80::1%eth 0",
  "fe80::1%eth0%1",
  "::%1",
  "[::1]",
  "::1:",
  "0000:0000:0000:0000:0000:0000:0000:0001",
  "00000::1",
];

Deno.test("ipVersion() agrees with node:net's isIP on addresses and near misses", () => {
  for (const text of CASES) assert.equal(ipVersion(text), isIP(text), JSON.stringify(text));
});

Deno.test("isIpv4Address() and isIpv6Address() split ipVersion() by family", () => {
  assert.equal(isIpv4Address("10.0.0.1"), true);
  assert.equal(isIpv6Address("10.0.0.1"), false);
  assert.equal(isIpv6Address("::ffff:10.0.0.1"), true);
  assert.equal(isIpv4Address("::ffff:10.0.0.1"), false);
});
