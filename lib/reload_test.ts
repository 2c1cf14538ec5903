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

Deno.test("ConfigWatcher applies every edit within 1 s while a sibling file is appended every 10 ms", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/config.yaml`;
  const configText = (i: number) =>
    `listen: "127.0.0.1:0"\nproxies:\n  "h${i}.test":\n    upstream: http://127.0.0.1:1\n`;
  await Deno.writeTextFile(path, configText(0));
  const appliedAt = new Map<string, number>();
  const { log } = quietLogger();
  const watcher = new ConfigWatcher({
    path,
    initialText: configText(0),
    log,
    apply: (config) => appliedAt.set(config.routes[0]!.host, performance.now()),
  });
  await watcher.start();
  // A request log beside the config, as in ~/.nexo or a Docker volume: every append is an event in the
  // watched directory.
  const logFile = await Deno.open(`${dir}/nexo.log`, { create: true, append: true });
  let appending = true;
  const appender = (async () => {
    while (appending) {
      await logFile.write(new TextEncoder().encode(`${Date.now()} GET / 200\n`));
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  })();
  const latencies: number[] = [];
  try {
    for (let i = 1; i <= 20; i++) {
      const text = configText(i);
      const written = performance.now();
      switch (i % 3) {
        case 0: // in place (through the link when the path is one)
          await Deno.writeTextFile(path, text);
          break;
        case 1: // an editor's write-and-rename
          await Deno.writeTextFile(`${path}.tmp`, text);
          await Deno.rename(`${path}.tmp`, path);
          break;
        case 2: // a swapped symlink, as a ConfigMap or a deploy script does
          await Deno.writeTextFile(`${dir}/v${i}.yaml`, text);
          await Deno.symlink(`v${i}.yaml`, `${dir}/link.tmp`);
          await Deno.rename(`${dir}/link.tmp`, path);
          break;
      }
      await until(() => appliedAt.has(`h${i}.test`));
      latencies.push(appliedAt.get(`h${i}.test`)! - written);
    }
    const slowest = Math.max(...latencies);
    assert.ok(
      slowest < 1000,
      `an edit took ${Math.round(slowest)} ms to apply: ${latencies.map(Math.round)}`,
    );
    assert.equal(appliedAt.size, 20);
  } finally {
    appending = false;
    await appender;
    logFile.close();
    watcher.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ConfigWatcher follows a Kubernetes ConfigMap's ..data swap and ignores other files", async () => {
  const dir = await Deno.makeTempDir();
  const configText = (i: number) =>
    `listen: "127.0.0.1:0"\nproxies:\n  "k${i}.test":\n    upstream: http://127.0.0.1:1\n`;
  // The kubelet's layout: config.yaml -> ..data/config.yaml, ..data -> ..<timestamp>/ (replaced atomically).
  const publish = async (i: number) => {
    await Deno.mkdir(`${dir}/..v${i}`);
    await Deno.writeTextFile(`${dir}/..v${i}/config.yaml`, configText(i));
    await Deno.symlink(`..v${i}`, `${dir}/..data_tmp`);
    await Deno.rename(`${dir}/..data_tmp`, `${dir}/..data`);
    if (i > 0) await Deno.remove(`${dir}/..v${i - 1}`, { recursive: true });
  };
  await publish(0);
  await Deno.symlink("..data/config.yaml", `${dir}/config.yaml`);
  const applied: string[] = [];
  const { log, events } = quietLogger();
  const watcher = new ConfigWatcher({
    path: `${dir}/config.yaml`,
    initialText: configText(0),
    log,
    apply: (config) => applied.push(config.routes[0]!.host),
  });
  await watcher.start();
  try {
    for (let i = 1; i <= 3; i++) {
      await publish(i);
      await until(() => applied.includes(`k${i}.test`));
    }
    // Unrelated files in the same directory trigger nothing.
    for (let i = 0; i < 20; i++) await Deno.writeTextFile(`${dir}/other-${i}.txt`, "x");
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.deepEqual(applied, ["k1.test", "k2.test", "k3.test"]);
    assert.ok(!events.includes("config watch failed"), events.join());
  } finally {
    watcher.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ConfigWatcher.start() applies an edit made after the config was loaded but before watching began", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/config.yaml`;
  const text = (host: string) =>
    `listen: "127.0.0.1:0"\nproxies:\n  "${host}":\n    upstream: http://127.0.0.1:1\n`;
  await Deno.writeTextFile(path, text("loaded.test"));
  const applied: string[] = [];
  const { log } = quietLogger();
  const watcher = new ConfigWatcher({
    path,
    initialText: text("loaded.test"),
    log,
    apply: (config) => applied.push(config.routes[0]!.host),
  });
  // Written while the server was starting, before any watch existed: no event will ever report it.
  await Deno.writeTextFile(path, text("early.test"));
  try {
    await watcher.start();
    assert.deepEqual(applied, ["early.test"]);
  } finally {
    watcher.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
