import assert from "node:assert/strict";
import { parseCidr } from "./cidr.ts";
import { clientAddress } from "./client_address.ts";

Deno.test("clientAddress() trusts X-Forwarded-For only from trusted proxies, rightmost untrusted hop first", () => {
  const trusted = ["10.0.0.0/8", "2400:cb00::/32"].map(parseCidr);
  assert.equal(clientAddress("192.0.2.1", "198.51.100.1", trusted), "192.0.2.1");
  assert.equal(clientAddress("10.0.0.1", null, trusted), "10.0.0.1");
  assert.equal(clientAddress("10.0.0.1", "198.51.100.1", trusted), "198.51.100.1");
  assert.equal(clientAddress("10.0.0.1", "203.0.113.5, 198.51.100.1", trusted), "198.51.100.1");
  assert.equal(clientAddress("10.0.0.1", "198.51.100.1, 10.2.2.2, 10.3.3.3", trusted), "198.51.100.1");
  assert.equal(clientAddress("2400:cb00::1", "2001:db8::7", trusted), "2001:db8::7");
  // Every hop trusted: the leftmost one is as far as the chain goes.
  assert.equal(clientAddress("10.0.0.1", "10.2.2.2, 10.3.3.3", trusted), "10.2.2.2");
  // Ports, as some proxies write them.
  assert.equal(clientAddress("10.0.0.1", "198.51.100.1:5000", trusted), "198.51.100.1");
  assert.equal(clientAddress("10.0.0.1", "[2001:db8::7]:443", trusted), "2001:db8::7");
  // A hop that is not an address ends the walk at the last one that was.
  assert.equal(clientAddress("10.0.0.1", "198.51.100.1, unknown", trusted), "10.0.0.1");
  assert.equal(clientAddress("10.0.0.1", "unknown, 10.2.2.2", trusted), "10.2.2.2");
  assert.equal(clientAddress("10.0.0.1", "", trusted), "10.0.0.1");
  // Nothing trusted: the socket, always.
  assert.equal(clientAddress("10.0.0.1", "198.51.100.1", []), "10.0.0.1");
});
