import assert from "node:assert/strict";
import { DASHBOARD_JS } from "./assets.ts";

Deno.test("the dashboard's script parses, and never turns data into markup", () => {
  // Parsed, not run: a template-literal slip (a "\n" that became a newline inside a string) fails here.
  new Function(DASHBOARD_JS);
  assert.doesNotMatch(DASHBOARD_JS, /innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(/);
});
