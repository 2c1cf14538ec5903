import assert from "node:assert/strict";
import { withinHangLimit } from "../../tests/fuzz.ts";
import { trimEndOf, withoutComment } from "./trim.ts";
import { parseConfig } from "./parse.ts";
import { ConfigError } from "./errors.ts";

Deno.test("trimEndOf() removes only the given characters, only at the end", () => {
  assert.equal(trimEndOf("a b \t ", " \t"), "a b");
  assert.equal(trimEndOf(" \t", " \t"), "");
  assert.equal(trimEndOf("", " "), "");
  assert.equal(trimEndOf("x\n ", " \t"), "x\n");
  assert.equal(trimEndOf("https://h/a///", "/"), "https://h/a");
  assert.equal(trimEndOf("  a", " "), "  a");
});

Deno.test("withoutComment() cuts from the first blank-led '#', keeps a '#' inside a word, and ignores a CR", () => {
  assert.equal(withoutComment("[a, b] # c ]: x"), "[a, b]");
  assert.equal(withoutComment("[a#b]: x"), "[a#b]: x");
  assert.equal(withoutComment("[a]\t# c\r"), "[a]");
  assert.equal(withoutComment("%YAML 1.2 # c"), "%YAML 1.2");
});

// A CI run failed on a fuzz case that took a second to read: a 30,000-space run before a key's last
// character, trimmed with /[ \t]+$/, which V8 retries from every start of the run. 200,000 characters would
// take minutes in quadratic time and take milliseconds in linear time.
Deno.test("parseConfig() reads long runs of blanks, dots and slashes in linear time wherever they appear", () => {
  const run = (c: string) => c.repeat(200_000);
  const cases: Record<string, string> = {
    "a block key": `proxies:\n  "a.example.com":\n    upstream: http://127.0.0.1:1\n    time${
      run(" ")
    }x: 1\n`,
    "a flow scalar": `wildcards: [a${run(" ")}b]\n`,
    "a quoted scalar": `email: "a${run(" ")}b\n  c"\n`,
    "a host name": `proxies:\n  "a${run(".")}b.":\n    upstream: http://127.0.0.1:1\n`,
    "an API base": `cloudflare:\n  api_token: t\n  api_base: https://h/${run("/")}a/\n`,
    "a directive": `%YAML 1.2${run(" ")}x\n---\nemail: a@b.c\n`,
    "a flow key's comment": `[a]${" #".repeat(100_000)}\r\n`,
  };
  // The check is the CPU limit; what each case parses to is other tests' business.
  for (const [where, yaml] of Object.entries(cases)) {
    withinHangLimit(`parseConfig() of ${where}`, () => {
      try {
        parseConfig(yaml, "/srv/nexo/config.yaml");
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
      }
    });
  }
});
