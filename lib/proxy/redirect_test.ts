import assert from "node:assert/strict";
import type { RedirectRoute } from "../config/types.ts";
import { redirectLocation, redirectResponse } from "./redirect.ts";

function route(target: string, keepPath: boolean, status: RedirectRoute["status"] = 302): RedirectRoute {
  return {
    kind: "redirect",
    host: "example.com",
    accessLog: true,
    hsts: null,
    access: null,
    position: { file: "t.yaml", line: 1, col: 1 },
    target: new URL(target),
    status,
    keepPath,
  };
}

Deno.test("redirectLocation() sends every path to the target as configured by default", () => {
  const url = new URL("https://example.com/some/page?q=1");
  assert.equal(
    redirectLocation(route("https://github.com/yourusername", false), url),
    "https://github.com/yourusername",
  );
});

Deno.test("redirectLocation() with keep_path joins the paths and keeps the query", () => {
  const url = new URL("https://example.com/repo/issues?state=open");
  assert.equal(
    redirectLocation(route("https://github.com/yourusername", true), url),
    "https://github.com/yourusername/repo/issues?state=open",
  );
  assert.equal(
    redirectLocation(route("https://new.example/", true), new URL("https://a/x")),
    "https://new.example/x",
  );
  assert.equal(
    redirectLocation(route("https://new.example/?ref=old", true), new URL("https://a/x?y=1")),
    "https://new.example/x?ref=old&y=1",
  );
});

Deno.test("redirectResponse() uses the route's status and escapes the link", async () => {
  const response = redirectResponse(route("https://new.example/", true, 308), new URL('https://a/"><x'));
  assert.equal(response.status, 308);
  assert.equal(response.headers.get("location"), "https://new.example/%22%3E%3Cx");
  assert.ok(!(await response.text()).includes('"><x'));
});
