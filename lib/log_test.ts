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

Deno.test("Logger with an asynchronous sink that stops taking lines drops and counts them, then reports it", async () => {
  const written: string[] = [];
  let release: (() => void) | null = null;
  let stalled = true;
  const sink = {
    writeSync(): number {
      throw new Error("an asynchronous sink is never written synchronously");
    },
    write(bytes: Uint8Array): Promise<number> {
      written.push(new TextDecoder().decode(bytes));
      if (!stalled) return Promise.resolve(bytes.length);
      // A pipe nobody reads: this write does not finish until released.
      return new Promise((resolve) => release = () => resolve(bytes.length));
    },
  };
  const log = new Logger({ format: "json", sink });
  log.info("first");
  log.flush();
  // ~2 MiB of lines while the first write hangs: about half fit the 1 MiB bound, the rest are dropped.
  const field = "x".repeat(1000);
  for (let i = 0; i < 2048; i++) log.info("request", { i, field });
  assert.ok(log.droppedLines > 900 && log.droppedLines < 1100, `dropped ${log.droppedLines}`);
  assert.equal(written.length, 1, "nothing more is written while a write hangs");
  stalled = false;
  release!();
  await log.settle();
  const lines = written.join("").trim().split("\n").map((line) => JSON.parse(line));
  assert.equal(lines[0].msg, "first");
  assert.equal(lines[1].msg, "log lines dropped");
  assert.equal(lines[1].count, log.droppedLines);
  assert.equal(lines.length, 2 + 2048 - log.droppedLines);
});

Deno.test("Logger.settle() gives up on a sink that never takes its lines", async () => {
  const log = new Logger({
    format: "json",
    sink: { writeSync: () => 0, write: () => new Promise<number>(() => {}) },
  });
  log.info("stuck");
  const started = Date.now();
  await log.settle(200);
  assert.ok(Date.now() - started < 1000);
});
