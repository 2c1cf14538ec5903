import assert from "node:assert/strict";
import { defaultCacheControl, isStaticType } from "./cache_control.ts";

Deno.test("defaultCacheControl() gives static assets a long public lifetime", () => {
  const value = defaultCacheControl(200, new Headers({ "content-type": "text/css; charset=utf-8" }), false);
  assert.equal(value, "public, max-age=86400");
  assert.equal(
    defaultCacheControl(200, new Headers({ "content-type": "image/png" }), false),
    "public, max-age=86400",
  );
});

Deno.test("defaultCacheControl() makes pages and API responses revalidate", () => {
  assert.equal(defaultCacheControl(200, new Headers({ "content-type": "text/html" }), false), "no-cache");
  assert.equal(
    defaultCacheControl(200, new Headers({ "content-type": "application/json" }), false),
    "no-cache",
  );
  assert.equal(defaultCacheControl(200, new Headers(), false), "no-cache");
});

Deno.test("defaultCacheControl() never says public for Set-Cookie responses or Authorization requests", () => {
  const css = { "content-type": "text/css" };
  assert.equal(
    defaultCacheControl(200, new Headers({ ...css, "set-cookie": "s=1" }), false),
    "private, max-age=86400",
  );
  assert.equal(defaultCacheControl(200, new Headers(css), true), "private, max-age=86400");
  assert.equal(defaultCacheControl(200, new Headers({ "set-cookie": "s=1" }), false), "private, no-cache");
});

Deno.test("defaultCacheControl() leaves upstream choices and uncacheable statuses alone", () => {
  assert.equal(defaultCacheControl(200, new Headers({ "cache-control": "no-store" }), false), null);
  assert.equal(defaultCacheControl(200, new Headers({ expires: "0" }), false), null);
  assert.equal(defaultCacheControl(500, new Headers({ "content-type": "text/css" }), false), null);
  assert.equal(defaultCacheControl(302, new Headers(), false), null);
});

Deno.test("isStaticType() reads the media type and ignores parameters and case", () => {
  assert.equal(isStaticType("Application/JavaScript; charset=utf-8"), true);
  assert.equal(isStaticType("font/woff2"), true);
  assert.equal(isStaticType("text/html"), false);
  assert.equal(isStaticType(null), false);
});
