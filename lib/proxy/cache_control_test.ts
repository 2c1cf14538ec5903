import assert from "node:assert/strict";
import { defaultCacheControl, isStaticType } from "./cache_control.ts";

const anonymous = { hasCredentials: false, path: "/page" };
const withCredentials = { hasCredentials: true, path: "/page" };

Deno.test("defaultCacheControl() gives static assets a long public lifetime", () => {
  const value = defaultCacheControl(
    200,
    new Headers({ "content-type": "text/css; charset=utf-8" }),
    anonymous,
  );
  assert.equal(value, "public, max-age=86400");
  assert.equal(
    defaultCacheControl(200, new Headers({ "content-type": "image/png" }), anonymous),
    "public, max-age=86400",
  );
});

Deno.test("defaultCacheControl() makes pages and API responses revalidate", () => {
  assert.equal(defaultCacheControl(200, new Headers({ "content-type": "text/html" }), anonymous), "no-cache");
  assert.equal(
    defaultCacheControl(200, new Headers({ "content-type": "application/json" }), anonymous),
    "no-cache",
  );
  assert.equal(defaultCacheControl(200, new Headers(), anonymous), "no-cache");
});

Deno.test("defaultCacheControl() never says public for Set-Cookie responses or Authorization requests", () => {
  const css = { "content-type": "text/css" };
  assert.equal(
    defaultCacheControl(200, new Headers({ ...css, "set-cookie": "s=1" }), anonymous),
    "private, max-age=86400",
  );
  assert.equal(defaultCacheControl(200, new Headers(css), withCredentials), "private, max-age=86400");
  assert.equal(
    defaultCacheControl(200, new Headers({ "set-cookie": "s=1" }), anonymous),
    "private, no-cache",
  );
});

Deno.test("defaultCacheControl() leaves upstream choices and uncacheable statuses alone", () => {
  assert.equal(defaultCacheControl(200, new Headers({ "cache-control": "no-store" }), anonymous), null);
  assert.equal(defaultCacheControl(200, new Headers({ expires: "0" }), anonymous), null);
  assert.equal(defaultCacheControl(500, new Headers({ "content-type": "text/css" }), anonymous), null);
  assert.equal(defaultCacheControl(302, new Headers(), anonymous), null);
});

Deno.test("defaultCacheControl() gives a 304 the value its 200 would carry", () => {
  const css = new Headers({ "content-type": "text/css" });
  const page = new Headers({ "content-type": "text/html" });
  assert.equal(defaultCacheControl(304, css, anonymous), defaultCacheControl(200, css, anonymous));
  assert.equal(defaultCacheControl(304, page, anonymous), defaultCacheControl(200, page, anonymous));
  // Without Content-Type (Express strips it on a 304) the path's extension stands in for it.
  assert.equal(
    defaultCacheControl(304, new Headers(), { hasCredentials: false, path: "/assets/app.min.JS" }),
    "public, max-age=86400",
  );
  assert.equal(defaultCacheControl(304, new Headers(), anonymous), "no-cache");
  assert.equal(
    defaultCacheControl(304, new Headers(), { hasCredentials: false, path: "/v1.2/users" }),
    "no-cache",
  );
  assert.equal(
    defaultCacheControl(304, new Headers(), { hasCredentials: true, path: "/a.png" }),
    "private, max-age=86400",
  );
  assert.equal(defaultCacheControl(304, new Headers({ "cache-control": "max-age=5" }), anonymous), null);
});

Deno.test("isStaticType() reads the media type and ignores parameters and case", () => {
  assert.equal(isStaticType("Application/JavaScript; charset=utf-8"), true);
  assert.equal(isStaticType("font/woff2"), true);
  assert.equal(isStaticType("text/html"), false);
  assert.equal(isStaticType(null), false);
});
