// End-to-end live config: nexo's config file edited the ways users do it (temp file + rename, in-place
// write, a swapped symlink, SIGHUP), with invalid edits rejected while the last good config keeps serving.

import assert from "node:assert/strict";
import { lostToHandover, retirementTimes } from "./handover.ts";
import { curl, startNexo } from "./harness.ts";
import { closedPort, startEchoUpstream } from "./upstreams.ts";

Deno.test("nexo applies config edits live and keeps the last good config on a bad edit", async (t) => {
  const app = startEchoUpstream();
  const routes = (hosts: string[]) =>
    `proxies:\n${hosts.map((host) => `  "${host}":\n    upstream: ${app.url}\n`).join("")}`;
  const nexo = await startNexo(routes(["a.test"]));
  const file = `${nexo.dir}/config.yaml`;
  const base = (await Deno.readTextFile(file)).split("proxies:")[0]!;
  const writeRenamed = async (text: string) => {
    await Deno.writeTextFile(`${file}.tmp`, text);
    await Deno.rename(`${file}.tmp`, file);
  };
  const status = async (host: string) => (await curl(nexo, host, "/")).status;
  const eventually = async (check: () => Promise<boolean>, what: string) => {
    const deadline = Date.now() + 3_000;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`${what} did not happen within 3 s:\n${nexo.output()}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  try {
    await t.step("a host added by write-and-rename is served within seconds", async () => {
      assert.equal(await status("a.test"), 200);
      const started = Date.now();
      await writeRenamed(base + routes(["a.test", "b.test"]));
      await eventually(async () => await status("b.test") === 200, "b.test served");
      assert.ok(Date.now() - started < 3_000);
      const line = await nexo.waitForLog((l) => l.msg === "config reloaded" && l.added === "b.test");
      assert.equal(line.routes, 2);
    });

    await t.step(
      "invalid YAML and a type error are rejected once each and the old routes keep serving",
      async () => {
        await Deno.writeTextFile(file, base + 'proxies:\n  "c.test": [unclosed\n');
        await nexo.waitForLog((l) => l.msg === "config reload rejected");
        await Deno.writeTextFile(
          file,
          base + `proxies:\n  "c.test":\n    upstream: ${app.url}\n    timeout: soon\n`,
        );
        await nexo.waitForLog((l) => l.msg === "config invalid" && String(l.error).includes("timeout"));
        assert.equal(await status("a.test"), 200);
        assert.equal(await status("b.test"), 200);
        const rejected = nexo.logs.filter((l) => l.msg === "config reload rejected").length;
        await new Promise((resolve) => setTimeout(resolve, 500));
        assert.equal(
          nexo.logs.filter((l) => l.msg === "config reload rejected").length,
          rejected,
          "no log storm",
        );
      },
    );

    await t.step("a removed host stops routing", async () => {
      await Deno.writeTextFile(file, base + routes(["a.test"]));
      await nexo.waitForLog((l) => l.msg === "config reloaded" && l.removed === "b.test");
      assert.notEqual(await status("b.test"), 200);
      assert.equal(await status("a.test"), 200);
    });

    await t.step("a swapped symlink (how Kubernetes updates mounted config) is followed", async () => {
      const real1 = `${nexo.dir}/real-1.yaml`;
      const real2 = `${nexo.dir}/real-2.yaml`;
      await Deno.writeTextFile(real1, base + routes(["a.test"]));
      await Deno.writeTextFile(real2, base + routes(["a.test", "k8s.test"]));
      await Deno.symlink(real1, `${file}.link`);
      await Deno.rename(`${file}.link`, file);
      await Deno.symlink(real2, `${file}.link`);
      await Deno.rename(`${file}.link`, file);
      await eventually(async () => await status("k8s.test") === 200, "k8s.test served");
    });

    await t.step(
      "a changed listen address is re-bound live, the new one up before the old one closes",
      async () => {
        const oldPort = nexo.port;
        const newPort = closedPort();
        const text = await Deno.readTextFile(file);
        await writeRenamed(text.replace(/^listen: .*$/m, `listen: "127.0.0.1:${newPort}"`));
        await nexo.waitForLog((l) =>
          l.msg === "listening" && l.moved === true && l.addr === `127.0.0.1:${newPort}`
        );
        nexo.port = newPort;
        assert.equal(await status("a.test"), 200);
        nexo.port = oldPort;
        assert.equal((await curl(nexo, "a.test", "/")).code, 7, "the old port no longer accepts");
        nexo.port = newPort;
      },
    );

    await t.step("SIGHUP reloads", async () => {
      Deno.kill(nexo.pid, "SIGHUP");
      await nexo.waitForLog((l) => l.msg === "config reload requested");
    });
  } finally {
    await nexo.stop();
    await app.close();
  }
});

Deno.test("100 reloads under a steady stream of requests fail none of them", async () => {
  const app = startEchoUpstream();
  const config = (timeout: number) =>
    `proxies:\n  "a.test":\n    upstream: ${app.url}\n    timeout: ${timeout}s\n`;
  const nexo = await startNexo(config(30));
  const file = `${nexo.dir}/config.yaml`;
  const base = (await Deno.readTextFile(file)).split("proxies:")[0]!;
  let stop = false;
  let ok = 0;
  const failures: string[] = [];
  const openFiles = async () => {
    let count = 0;
    for await (const _ of Deno.readDir(`/proc/${nexo.pid}/fd`)) count++;
    return count;
  };
  const fdsBefore = await openFiles();
  let fdsAfter = 0;
  const load = (async () => {
    while (!stop) {
      const res = await curl(nexo, "a.test", "/steady");
      if (res.status === 200) ok++;
      else failures.push(`${res.status} ${res.stderr}`);
    }
  })();
  try {
    for (let i = 0; i < 100; i++) {
      await Deno.writeTextFile(`${file}.tmp`, base + config(31 + i));
      await Deno.rename(`${file}.tmp`, file);
      // Past the watcher's debounce, so each write is its own reload.
      await new Promise((resolve) => setTimeout(resolve, 180));
    }
    await nexo.waitForLog((l) => l.msg === "config reloaded" && l.changed === "a.test");
  } finally {
    stop = true;
    await load;
    fdsAfter = await openFiles();
    await nexo.stop();
    await app.close();
  }
  assert.deepEqual(failures, []);
  assert.ok(ok > 30, `requests flowed during the reloads (${ok})`);
  const reloads = nexo.logs.filter((l) => l.msg === "config reloaded").length;
  assert.ok(reloads >= 90, `each write was a reload (${reloads} of 100)`);
  // No listener, watcher or worker left behind per reload: the process holds about as many files as before
  // (a few pooled upstream and client connections may come and go).
  assert.ok(fdsAfter - fdsBefore < 10, `open files ${fdsBefore} -> ${fdsAfter}`);
});

Deno.test("edits next to a log appended every 10 ms are each served within 1 s, failing no request", async () => {
  const app = startEchoUpstream();
  const routes = (hosts: string[]) =>
    `proxies:\n${hosts.map((host) => `  "${host}":\n    upstream: ${app.url}\n`).join("")}`;
  const nexo = await startNexo(routes(["a.test"]));
  const file = `${nexo.dir}/config.yaml`;
  const base = (await Deno.readTextFile(file)).split("proxies:")[0]!;
  // A request log in the config's directory, as in ~/.nexo or a Docker volume that also holds state.
  const logFile = await Deno.open(`${nexo.dir}/access.log`, { create: true, append: true });
  let stop = false;
  const appender = (async () => {
    while (!stop) {
      await logFile.write(new TextEncoder().encode(`${new Date().toISOString()} GET / 200\n`));
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  })();
  const failures: Array<{ error: string; endedMs: number }> = [];
  let ok = 0;
  const load = (async () => {
    while (!stop) {
      const res = await curl(nexo, "a.test", "/steady");
      if (res.status === 200) ok++;
      else failures.push({ error: `curl ${res.code}: ${res.status} ${res.stderr}`, endedMs: Date.now() });
    }
  })();
  const latencies: number[] = [];
  try {
    const hosts = ["a.test"];
    for (let i = 1; i <= 20; i++) {
      hosts.push(`h${i}.test`);
      const text = base + routes(hosts);
      const written = performance.now();
      switch (i % 3) {
        case 0:
          await Deno.writeTextFile(file, text);
          break;
        case 1:
          await Deno.writeTextFile(`${file}.tmp`, text);
          await Deno.rename(`${file}.tmp`, file);
          break;
        case 2:
          await Deno.writeTextFile(`${nexo.dir}/v${i}.yaml`, text);
          await Deno.symlink(`v${i}.yaml`, `${nexo.dir}/link.tmp`);
          await Deno.rename(`${nexo.dir}/link.tmp`, file);
          break;
      }
      // Served means routed: the new host answers 200 instead of 404.
      while ((await curl(nexo, `h${i}.test`, "/")).status !== 200) {
        if (performance.now() - written > 5_000) throw new Error(`h${i}.test not served after 5 s`);
      }
      latencies.push(performance.now() - written);
    }
  } finally {
    stop = true;
    await Promise.all([appender, load]);
    logFile.close();
    await nexo.stop();
    await app.close();
  }
  // Each probe of h{i}.test before its edit is applied leaves a failed name in the listener's SNI cache, so
  // applying the edit retires that listener: the one cost accepted (tests/handover.ts), at most one
  // connection per retirement. Anything else failing is a reload dropping a request.
  const retirements = retirementTimes(nexo.logs);
  const unexplained = failures.filter((f) => !lostToHandover(f.error, f.endedMs, retirements));
  assert.deepEqual(unexplained.map((f) => f.error), [], nexo.output());
  assert.ok(
    failures.length <= retirements.length,
    `${failures.length} connections lost over ${retirements.length} listener retirements`,
  );
  assert.ok(ok > 10, `requests flowed during the edits (${ok})`);
  // Each poll is a curl run (~20-40 ms), so the figure includes up to one of those past the swap.
  const slowest = Math.max(...latencies);
  assert.ok(
    slowest < 1000,
    `slowest edit served after ${Math.round(slowest)} ms: ${latencies.map(Math.round)}`,
  );
});
