import assert from "node:assert/strict";
import { Logger } from "./log.ts";

function capture(format: "text" | "json", level: "debug" | "info" | "warn" | "error" = "info") {
  let text = "";
  const sink = {
    writeSync(bytes: Uint8Array) {
      text += new TextDecoder().decode(bytes);
      return bytes.length;
    },
  };
  return { log: new Logger({ format, level, sink }), output: () => text };
}

Deno.test("Logger writes JSON lines with time, level, msg and the fields", () => {
  const { log, output } = capture("json");
  log.info("certificate installed", {
    names: "a.test",
    not_after: "2027-01-01T00:00:00.000Z",
    skipped: undefined,
  });
  log.flush();
  const line = JSON.parse(output().trim());
  assert.equal(line.level, "info");
  assert.equal(line.msg, "certificate installed");
  assert.equal(line.names, "a.test");
  assert.equal("skipped" in line, false);
  assert.ok(!Number.isNaN(Date.parse(line.time)));
});

Deno.test("Logger writes readable text lines, quoting values with spaces", () => {
  const { log, output } = capture("text");
  log.warn("upstream failed", { host: "a.test", error: "connection refused" });
  log.flush();
  assert.match(output(), /^\S+Z WARN {2}upstream failed host=a\.test error="connection refused"\n$/);
});

Deno.test("Logger drops lines below its level and batches the rest into one write", () => {
  let writes = 0;
  const log = new Logger({
    format: "json",
    level: "warn",
    sink: { writeSync: (b: Uint8Array) => (writes++, b.length) },
  });
  log.info("ignored");
  log.warn("one");
  log.error("two");
  log.flush();
  assert.equal(writes, 1);
  assert.equal(log.enabled("info"), false);
});
