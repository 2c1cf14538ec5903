import assert from "node:assert/strict";
import { Logger } from "./log.ts";
import { ConfigWatcher } from "./reload.ts";
import type { Config } from "./config/types.ts";

function quietLogger(): { log: Logger; events: string[] } {
  const events: string[] = [];
  const sink = {
    writeSync(bytes: Uint8Array) {
      for (const line of new TextDecoder().decode(bytes).split("\n")) {
        if (line) events.push(JSON.parse(line).msg);
      }
      return bytes.length;
    },
  };
  return { log: new Logger({ format: "json", sink }), events };
}

async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 3_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

Deno.test("ConfigWatcher applies a burst of writes once, ignores unchanged text and leaks nothing", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/config.yaml`;
  const first = `listen: "127.0.0.1:0"\nproxies: {}\n`;
  await Deno.writeTextFile(path, first);
  const applied: Config[] = [];
  const { log, events } = quietLogger();
  const watcher = new ConfigWatcher({
    path,
    initialText: first,
    log,
    apply: (config) => applied.push(config),
  });
  await watcher.start();
  try {
    for (let i = 0; i < 5; i++) {
      await Deno.writeTextFile(
        path,
        `listen: "127.0.0.1:0"\nproxies:\n  "a${i}.test":\n    redirect: example.org\n`,
      );
    }
    await until(() => applied.length === 1);
    assert.equal(applied[0]!.routes[0]!.host, "a4.test", "the burst became one reload of the last write");
    await watcher.reload();
    assert.equal(applied.length, 2, "SIGHUP reloads even unchanged text");
    await Deno.writeTextFile(path, "proxies: [\n");
    log.flush();
    await until(() => (log.flush(), events.includes("config reload rejected")));
    assert.equal(applied.length, 2);
  } finally {
    watcher.stop();
    log.flush();
    await new Promise((resolve) => setTimeout(resolve, 200));
    await Deno.remove(dir, { recursive: true });
  }
});
