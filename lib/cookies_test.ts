import assert from "node:assert/strict";
import { cookieValue, hostCookie, withoutCookie } from "./cookies.ts";

Deno.test("cookieValue finds a cookie among others, in one Cookie line or several", () => {
  const one: Array<[string, string]> = [["cookie", "a=1; __Host-s=tok.en; b=2"]];
  assert.equal(cookieValue(one, "__Host-s"), "tok.en");
  assert.equal(cookieValue(one, "s"), null, "a name is matched whole");
  const split: Array<[string, string]> = [["accept", "*/*"], ["cookie", "a=1"], ["cookie", "__Host-s=x"]];
  assert.equal(cookieValue(split, "__Host-s"), "x");
  assert.equal(cookieValue([["cookie", "a=1, __Host-s=y"]], "__Host-s"), "y", "joined with a comma");
  assert.equal(cookieValue([], "a"), null);
});

Deno.test("withoutCookie takes one cookie out and keeps the rest, dropping a line left empty", () => {
  assert.deepEqual(withoutCookie([["cookie", "a=1; __Host-s=x;b=2"], ["accept", "*/*"]], "__Host-s"), [
    ["cookie", "a=1; b=2"],
    ["accept", "*/*"],
  ]);
  assert.deepEqual(withoutCookie([["cookie", "__Host-s=x"], ["cookie", "c=3"]], "__Host-s"), [[
    "cookie",
    "c=3",
  ]]);
  const untouched: Array<[string, string]> = [["cookie", "a=1"]];
  assert.equal(withoutCookie(untouched, "__Host-s"), untouched);
});

Deno.test("hostCookie writes what the __Host- prefix requires: Secure, Path=/, no Domain", () => {
  assert.equal(
    hostCookie("__Host-s", "v", 60),
    "__Host-s=v; Path=/; Max-Age=60; Secure; HttpOnly; SameSite=Lax",
  );
});
