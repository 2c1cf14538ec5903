import assert from "node:assert/strict";
import { isAddressHost } from "./admin.ts";

Deno.test("isAddressHost() takes IP literals and localhost, with or without a port, and nothing else", () => {
  for (
    const host of [
      "127.0.0.1:9090",
      "127.0.0.1",
      "localhost:9090",
      "LOCALHOST",
      "[::1]:9090",
      "[2001:db8::1]",
    ]
  ) {
    assert.equal(isAddressHost(host), true, host);
  }
  for (
    const host of [
      null,
      "",
      "rebound.example.com",
      "localhost.example.com:9090",
      "127.0.0.1.nip.io",
      "[::1]x",
    ]
  ) {
    assert.equal(isAddressHost(host), false, String(host));
  }
});
