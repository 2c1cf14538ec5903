import assert from "node:assert/strict";
import posix from "node:path/posix";
import { basename, dirname, isAbsolute, join, resolve } from "./path.ts";

const PATHS = [
  "",
  ".",
  "..",
  "/",
  "//",
  "//a",
  "//a/b",
  "///a",
  "a",
  "a/",
  "a//b",
  "/a",
  "/a/",
  "/a/b",
  "/a/b/",
  "/a/b//",
  "a/b/../c",
  "../a",
  "../../a/b",
  "a/../..",
  "/..",
  "/../a",
  "./a",
  "a/./b",
  "/etc/nexo/config.yaml",
  ".nexo",
  "a/.",
  "a/..",
  "///a///b///",
  "certs/example.com/fullchain.pem",
];

Deno.test("path functions give what node:path/posix gives", () => {
  for (const path of PATHS) {
    assert.equal(dirname(path), posix.dirname(path), `dirname(${JSON.stringify(path)})`);
    assert.equal(basename(path), posix.basename(path), `basename(${JSON.stringify(path)})`);
    assert.equal(isAbsolute(path), posix.isAbsolute(path), `isAbsolute(${JSON.stringify(path)})`);
    assert.equal(resolve(path), posix.resolve(path), `resolve(${JSON.stringify(path)})`);
    for (const other of PATHS) {
      assert.equal(join(path, other), posix.join(path, other), `join(${JSON.stringify([path, other])})`);
      assert.equal(
        resolve(path, other),
        posix.resolve(path, other),
        `resolve(${JSON.stringify([path, other])})`,
      );
    }
  }
  assert.equal(join(), posix.join());
  assert.equal(join("a", "b", "../c", "d/"), posix.join("a", "b", "../c", "d/"));
  assert.equal(resolve("/srv", "nexo", "..", "x"), posix.resolve("/srv", "nexo", "..", "x"));
});
