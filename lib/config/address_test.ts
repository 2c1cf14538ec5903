import assert from "node:assert/strict";
import { parseListenAddress, parseResolver } from "./address.ts";

Deno.test("parseListenAddress() reads a bare port, as a number or a string, as all interfaces", () => {
  assert.deepEqual(parseListenAddress(443), { hostname: "", port: 443 });
  assert.deepEqual(parseListenAddress("443"), { hostname: "", port: 443 });
  assert.deepEqual(parseListenAddress(":443"), { hostname: "", port: 443 });
});

Deno.test("parseListenAddress() reads IPv4, bracketed IPv6 and host names with a port", () => {
  assert.deepEqual(parseListenAddress("0.0.0.0:443"), { hostname: "0.0.0.0", port: 443 });
  assert.deepEqual(parseListenAddress("127.0.0.1:8443"), { hostname: "127.0.0.1", port: 8443 });
  assert.deepEqual(parseListenAddress("[::1]:443"), { hostname: "::1", port: 443 });
  assert.deepEqual(parseListenAddress("Localhost:8443"), { hostname: "localhost", port: 8443 });
});

Deno.test("parseListenAddress() allows ports 0-65535 only, 0 meaning any free port", () => {
  assert.deepEqual(parseListenAddress(65535), { hostname: "", port: 65535 });
  assert.deepEqual(parseListenAddress("127.0.0.1:0"), { hostname: "127.0.0.1", port: 0 });
  assert.throws(() => parseListenAddress(-1), { name: "RangeError" });
  assert.throws(() => parseListenAddress(":70000"), { message: /port 70000 is out of range/ });
  assert.throws(() => parseListenAddress("host:https"), { message: /port "https" is not a number/ });
});

Deno.test("parseListenAddress() asks for a port when there is none", () => {
  assert.throws(() => parseListenAddress("0.0.0.0"), {
    message: /it has no port \(add one: "0\.0\.0\.0:443"\)/,
  });
  assert.throws(() => parseListenAddress("[::1]"), { message: /add one: "\[::1\]:443"/ });
});

Deno.test("parseListenAddress() suggests brackets for a bare IPv6 address", () => {
  assert.throws(() => parseListenAddress("::1:443"), {
    message: /put IPv6 addresses in brackets: "\[::1\]:443"/,
  });
});

Deno.test("parseListenAddress() rejects bad hosts, URLs and *", () => {
  assert.throws(() => parseListenAddress("300.1.1.1:80"), {
    message: /"300\.1\.1\.1" is not an IPv4 address/,
  });
  assert.throws(() => parseListenAddress("[nope]:80"), { message: /is not an IPv6 address/ });
  assert.throws(() => parseListenAddress("bad_host:80"), { message: /bad host/ });
  assert.throws(() => parseListenAddress("https://x:443"), { message: /not a URL/ });
  assert.throws(() => parseListenAddress("*:443"), { message: /write ":443" to listen on all interfaces/ });
  assert.throws(() => parseListenAddress(""), { message: /empty listen address/ });
});

Deno.test("parseResolver() accepts a host, with or without a port", () => {
  assert.equal(parseResolver("1.1.1.1"), "1.1.1.1");
  assert.equal(parseResolver("1.1.1.1:53"), "1.1.1.1:53");
  assert.equal(parseResolver("[2606:4700:4700::1111]:53"), "[2606:4700:4700::1111]:53");
  assert.equal(parseResolver("[2606:4700:4700::1111]"), "[2606:4700:4700::1111]");
  assert.equal(parseResolver("DNS.Example.com:5353"), "dns.example.com:5353");
});

Deno.test("parseResolver() rejects bare IPv6, bad hosts and bad ports", () => {
  assert.throws(() => parseResolver("2606:4700::1111"), {
    message: /put IPv6 addresses in brackets: "\[2606:4700::1111\]:53"/,
  });
  assert.throws(() => parseResolver(":53"), { message: /it has no host/ });
  assert.throws(() => parseResolver("1.1.1.1:0"), { message: /port 0 is out of range/ });
  assert.throws(() => parseResolver("a..b"), { message: /empty label/ });
});
