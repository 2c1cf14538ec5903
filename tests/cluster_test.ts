// Several nexo instances sharing one Redis (`storage.redis`): three real nexo processes, a real redis-server,
// Pebble validating DNS-01 through the fake Cloudflare and challtestsrv (HTTP-01 through a load balancer in
// one test). One order per certificate while all three start at once; one renewal for the cluster with every
// instance switching and no request failing; the lock holder killed mid-order and another finishing within
// the lock's expiry plus 10 s; Redis down for 30 s with no failed request and the waiting work resumed.

import assert from "node:assert/strict";
import { bundledMain } from "./bundle.ts";
import { dns01Config, type Dns01Setup, getLikeAClient, servedFingerprint } from "./acme_world.ts";
import { type ChallTestSrv, startChallTestSrv } from "./challtestsrv.ts";
import { type FakeCloudflare, startFakeCloudflare } from "./fake_cloudflare.ts";
import { type DoctorRun, type NexoProcess, runDoctor, startNexo } from "./harness.ts";
import { type Pebble, startPebble } from "./pebble.ts";
import { type RedisServer, startRedis } from "./redis.ts";
import { closedPort, startEchoUpstream } from "./upstreams.ts";
import { RespClient } from "../lib/storage/resp_client.ts";
import { LocalCa, localCaRootPath } from "../lib/tls/local_ca.ts";
import { parseRedisUrl } from "../lib/storage/redis_url.ts";

const TOKEN = "cluster-token-5e4d3c2b1a09";
/** RedisStorage's default lock expiry: a dead holder's lock frees itself after it. */
const LOCK_TTL_MS = 30_000;

interface World {
  dns: ChallTestSrv;
  cloudflare: FakeCloudflare;
  pebble: Pebble;
  redis: RedisServer;
  setup: Dns01Setup;
  root: string;
  upstream: string;
  [Symbol.asyncDispose](): Promise<void>;
}

async function startWorld(options: { validitySeconds?: number; httpPort?: number } = {}): Promise<World> {
  const dns = await startChallTestSrv();
  const cloudflare = await startFakeCloudflare({ token: TOKEN, zones: ["example.com"], challtestsrv: dns });
  const pebble = await startPebble({
    dnsServer: dns.dnsServer,
    env: { PEBBLE_VA_NOSLEEP: "1" },
    ...(options.validitySeconds ? { validitySeconds: options.validitySeconds } : {}),
    ...(options.httpPort ? { httpPort: options.httpPort } : {}),
  });
  const redis = await startRedis({ persistent: true });
  const app = startEchoUpstream();
  const caFile = await Deno.makeTempFile({ suffix: ".pem" });
  await Deno.writeTextFile(caFile, pebble.apiCaPem);
  return {
    dns,
    cloudflare,
    pebble,
    redis,
    root: await pebble.issuerRootPem(),
    upstream: app.url,
    setup: {
      directoryUrl: pebble.directoryUrl,
      caFile,
      dnsServer: dns.dnsServer,
      apiBase: cloudflare.apiBase,
      token: TOKEN,
    },
    async [Symbol.asyncDispose]() {
      await redis[Symbol.asyncDispose]();
      await pebble.stop();
      await app.close();
      await cloudflare.close();
      await dns.stop();
      await Deno.remove(caFile);
    },
  };
}

/** The config every instance runs: DNS-01 at the fake Cloudflare, the shared Redis, `hosts` proxied. */
function clusterConfig(world: World, hosts: string[], acmeLines: string[] = []): string {
  return dns01Config(world.setup, ["retry_interval: 1s", ...acmeLines]) +
    `storage:\n  redis:\n    url: ${world.redis.url}\n    prefix: test-cluster\n` +
    proxiesBlock(world, hosts);
}

function proxiesBlock(world: World, hosts: string[]): string {
  return `proxies:\n${hosts.map((host) => `  "${host}":\n    upstream: ${world.upstream}\n`).join("")}`;
}

/** Starts `count` instances at once on `config`. */
async function startCluster(config: string, count = 3): Promise<NexoProcess[]> {
  const started = await Promise.allSettled(Array.from({ length: count }, () => startNexo(config)));
  const nexos = started.flatMap((result) => result.status === "fulfilled" ? [result.value] : []);
  const failed = started.find((result) => result.status === "rejected");
  if (failed !== undefined) {
    await Promise.all(nexos.map((nexo) => nexo.stop()));
    throw (failed as PromiseRejectedResult).reason;
  }
  return nexos;
}

/** Orders started for `host` across `nexos` (each instance logs its own). */
function ordersFor(nexos: NexoProcess[], host: string): number {
  return nexos.flatMap((nexo) => nexo.logs)
    .filter((line) =>
      line.msg === "certificate order started" && String(line.names).split(",").includes(host)
    )
    .length;
}

function installed(host: string): (line: Record<string, unknown>) => boolean {
  return (line) => line.msg === "certificate installed" && String(line.names).split(",").includes(host);
}

/**
 * New TLS connections to every instance, one after another, until `stop()`, as HTTP clients make them
 * (getLikeAClient): each request must get 200 with a certificate valid under Pebble's root. Keeps the serial
 * numbers each instance served, in order.
 */
function startTraffic(nexos: NexoProcess[], host: string, root: string) {
  let running = true;
  const served = nexos.map(() => [] as string[]);
  const errors: string[] = [];
  let requests = 0;
  const loop = (async () => {
    while (running) {
      for (const [i, nexo] of nexos.entries()) {
        try {
          served[i]!.push(await getLikeAClient(nexo.port, host, root));
        } catch (error) {
          errors.push(`instance ${i}: ${error}`);
        }
        requests++;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  return {
    served,
    errors,
    get requests() {
      return requests;
    },
    async stop() {
      running = false;
      await loop;
    },
  };
}

/** The `storage` section of an instance's /status (its admin listener is on a port it chose). */
async function storageStatus(nexo: NexoProcess): Promise<Record<string, unknown>> {
  const line = await nexo.waitForLog((l) => l.msg === "listening" && l.protocol === "admin");
  const response = await fetch(`http://${line.addr}/status`);
  return (await response.json()).storage;
}

async function stopAll(nexos: NexoProcess[]): Promise<void> {
  await Promise.all(nexos.map((nexo) => nexo.stop()));
}

Deno.test("three instances starting at once order one certificate, serve it, and renew it once with no failed request", async () => {
  // 40 s certificates with renew_before past half their life: renewed at about 20 s of age.
  await using world = await startWorld({ validitySeconds: 40 });
  const host = "shared.example.com";
  const nexos = await startCluster(clusterConfig(world, [host], ["renew_before: 720h"]));
  try {
    await Promise.all(nexos.map((nexo) => nexo.waitForLog(installed(host), 60_000)));
    assert.equal(ordersFor(nexos, host), 1, "one order across the three instances");
    const adopted = nexos.flatMap((nexo) => nexo.logs).filter((line) =>
      line.msg === "certificate installed" && line.from === "shared storage" ||
      line.msg === "certificate installed" && line.obtained_by === "another instance"
    );
    assert.ok(adopted.length >= 2, "the other two took the stored certificate");
    const first = await Promise.all(nexos.map((nexo) => getLikeAClient(nexo.port, host, world.root)));
    assert.equal(new Set(first).size, 1, "all three serve the same certificate");

    const traffic = startTraffic(nexos, host, world.root);
    try {
      const deadline = Date.now() + 60_000;
      while (!traffic.served.every((list) => list.length > 0 && list.at(-1) !== first[0])) {
        assert.ok(Date.now() < deadline, `not every instance switched: ${traffic.errors.join("\n")}`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    } finally {
      await traffic.stop();
    }
    assert.deepEqual(traffic.errors, [], "no request failed during the renewal");
    assert.ok(traffic.requests > 30, `requests kept flowing (${traffic.requests})`);
    const latest = traffic.served.map((list) => list.at(-1));
    assert.equal(new Set(latest).size, 1, "all three switched to the same new certificate");
    assert.equal(ordersFor(nexos, host), 2, "the renewal was ordered once for the cluster");
    // Pebble reuses an authorization still valid, so the renewal may need no new TXT record: at most one each.
    const txtCreated = world.cloudflare.requests.filter((r) =>
      r.method === "POST" && r.path.includes("dns_records")
    );
    assert.ok(
      txtCreated.length <= 2,
      `no instance published a challenge of its own (${txtCreated.length} TXT records)`,
    );
  } finally {
    await stopAll(nexos);
  }
});

Deno.test("the instance holding the lock killed mid-order: another finishes within the lock expiry plus 10 s", async () => {
  await using world = await startWorld();
  const host = "killed.example.com";
  const nexos = await startCluster(clusterConfig(world, [host]));
  const alive: NexoProcess[] = [];
  try {
    const holder = await Promise.race(
      nexos.map((nexo) =>
        nexo.waitForLog((line) => line.msg === "certificate order started", 60_000).then(() => nexo)
      ),
    );
    await holder.stop("SIGKILL");
    const killedAt = Date.now();
    alive.push(...nexos.filter((nexo) => nexo !== holder));
    await Promise.all(alive.map((nexo) => nexo.waitForLog(installed(host), LOCK_TTL_MS + 10_000)));
    const tookMs = Date.now() - killedAt;
    assert.ok(tookMs < LOCK_TTL_MS + 10_000, `finished ${tookMs} ms after the kill`);
    const fingerprints = await Promise.all(alive.map((nexo) => servedFingerprint(nexo, host, world.root)));
    assert.equal(new Set(fingerprints).size, 1, "both survivors serve the same certificate");
    assert.equal(ordersFor(alive, host), 1, "one survivor ordered; the other took its certificate");
  } finally {
    await stopAll(alive);
  }
});

Deno.test("Redis down for 30 s: no request fails, and the work that waited resumes once it is back", async () => {
  await using world = await startWorld();
  const host = "steady.example.com";
  const added = "later.example.com";
  const config = `admin:\n  listen: "127.0.0.1:0"\n` + clusterConfig(world, [host]);
  const nexos = await startCluster(config);
  try {
    await Promise.all(nexos.map((nexo) => nexo.waitForLog(installed(host), 60_000)));
    const traffic = startTraffic(nexos, host, world.root);
    try {
      await world.redis.stop();
      const downAt = Date.now();
      await Promise.all(
        nexos.map((nexo) => nexo.waitForLog((line) => line.msg === "shared storage unreachable", 15_000)),
      );
      const down = await storageStatus(nexos[0]!);
      assert.equal(down.reachable, false, "/status says the store is unreachable");
      assert.match(String(down.error), /redis:\/\/127\.0\.0\.1:\d+\/0 /);
      // A host added during the outage: its certificate must wait for the store, then be ordered once.
      for (const nexo of nexos) {
        const path = `${nexo.dir}/config.yaml`;
        const text = await Deno.readTextFile(path);
        await Deno.writeTextFile(
          path,
          text.replace(proxiesBlock(world, [host]), proxiesBlock(world, [host, added])),
        );
      }
      await Promise.all(
        nexos.map((nexo) => nexo.waitForLog((line) => line.msg === "config reloaded", 10_000)),
      );
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, 30_000 - (Date.now() - downAt))));
      assert.equal(ordersFor(nexos, added), 0, "nothing was ordered while the store was down");
      await world.redis.start();
      await Promise.all(
        nexos.map((nexo) => nexo.waitForLog((line) => line.msg === "shared storage reachable", 20_000)),
      );
      await Promise.all(nexos.map((nexo) => nexo.waitForLog(installed(added), 40_000)));
      assert.equal((await storageStatus(nexos[0]!)).reachable, true, "/status says the store is back");
    } finally {
      await traffic.stop();
    }
    assert.deepEqual(traffic.errors, [], "no request failed while Redis was down");
    assert.ok(traffic.requests > 100, `requests kept flowing (${traffic.requests})`);
    assert.equal(ordersFor(nexos, added), 1, "the waiting certificate was ordered once");
    const fingerprints = await Promise.all(nexos.map((nexo) => servedFingerprint(nexo, added, world.root)));
    assert.equal(new Set(fingerprints).size, 1);
    const checks = nexos.flatMap((nexo) => nexo.logs).filter((line) =>
      line.msg === "certificate check failed"
    );
    assert.ok(checks.length < 3 * 12, `checks backed off while the store was down (${checks.length})`);
  } finally {
    await stopAll(nexos);
  }
});

Deno.test("HTTP-01 behind a load balancer: the instance the CA reaches answers another instance's challenge", async () => {
  // Pebble validates at the balancer, which sends each connection to an instance that is not ordering.
  const balancerPort = closedPort();
  await using world = await startWorld({ httpPort: balancerPort });
  const host = "balanced.example.com";
  const config =
    `issuer: acme\nacme:\n  directory: ${world.setup.directoryUrl}\n  ca_cert: ${world.setup.caFile}\n` +
    `  retry_interval: 1s\nhttp_listen: "127.0.0.1:0"\n` +
    `storage:\n  redis:\n    url: ${world.redis.url}\n    prefix: test-http01\n` +
    proxiesBlock(world, [host]);
  const nexos = await startCluster(config);
  const ordering = () =>
    nexos.filter((nexo) => nexo.logs.some((line) => line.msg === "certificate order started"));
  let answeredBy: NexoProcess[] = [];
  const balancer = Deno.listen({ hostname: "127.0.0.1", port: balancerPort });
  const forwarding = (async () => {
    for await (const conn of balancer) {
      const target = nexos.find((nexo) => !ordering().includes(nexo))!;
      answeredBy.push(target);
      void (async () => {
        const upstream = await Deno.connect({ hostname: "127.0.0.1", port: target.httpPort! });
        await Promise.allSettled([
          conn.readable.pipeTo(upstream.writable),
          upstream.readable.pipeTo(conn.writable),
        ]);
      })();
    }
  })();
  try {
    await Promise.all(nexos.map((nexo) => nexo.waitForLog(installed(host), 60_000)));
    assert.equal(ordersFor(nexos, host), 1);
    assert.ok(answeredBy.length > 0, "Pebble validated through the balancer");
    assert.ok(
      answeredBy.every((nexo) => !ordering().includes(nexo)),
      "only instances that did not order answered",
    );
    const served = answeredBy[0]!.logs.find((line) => line.msg === "acme challenge served");
    assert.ok(served, "the challenge was served from the shared store");
  } finally {
    answeredBy = [];
    balancer.close();
    await forwarding.catch(() => {});
    await stopAll(nexos);
  }
});

/** Runs `nexo <args>` to the end; resolves its exit code and everything it printed. */
async function runNexo(args: string[]): Promise<{ code: number; output: string }> {
  const result = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", await bundledMain(), ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: result.code, output: decode(result.stdout) + decode(result.stderr) };
}

Deno.test("a single instance grows into a cluster: migrate-storage copies cert_dir into Redis, encrypted, and back; nothing is ordered again", async () => {
  await using world = await startWorld();
  const host = "grown.example.com";
  const dir = await Deno.makeTempDir({ prefix: "nexo-migrate-" });
  const back = await Deno.makeTempDir({ prefix: "nexo-migrate-back-" });
  const nexos: NexoProcess[] = [];
  try {
    const single = await startNexo(
      dns01Config(world.setup, ["retry_interval: 1s"]) + proxiesBlock(world, [host]),
      {
        dir,
      },
    );
    try {
      await single.waitForLog(installed(host), 60_000);
    } finally {
      await single.stop();
    }
    const original = await Deno.readTextFile(`${dir}/certs/${host}/privkey.pem`);
    const keyFile = `${dir}/storage.key`;
    await Deno.writeTextFile(keyFile, crypto.getRandomValues(new Uint8Array(32)).toBase64() + "\n");
    const storage = `storage:\n  redis:\n    url: ${world.redis.url}\n    prefix: test-migrate\n` +
      `  encryption_key_file: ${keyFile}\n`;
    const clusterBody = dns01Config(world.setup, ["retry_interval: 1s"]) + storage +
      proxiesBlock(world, [host]);
    const config = `${dir}/config.yaml`;
    await Deno.writeTextFile(config, `base_dir: ${dir}\nlisten: "127.0.0.1:0"\n${clusterBody}`);

    const into = await runNexo(["migrate-storage", "--config", config, "--to", "redis"]);
    assert.equal(into.code, 0, into.output);
    assert.match(into.output, /certificates: 1 copied/);
    assert.match(into.output, /ACME accounts: 2 copied/);
    const client = new RespClient(parseRedisUrl(world.redis.url), {
      connectTimeoutMs: 2000,
      commandTimeoutMs: 2000,
    });
    try {
      const raw = await client.command(["GET", `test-migrate:certs:v:${host}/privkey.pem`]);
      assert.ok(raw instanceof Uint8Array);
      const text = new TextDecoder().decode(raw);
      assert.ok(text.startsWith("nexo-aes256gcm-v1\n"), "the private key is encrypted in Redis");
      assert.ok(!text.includes("PRIVATE KEY"));
    } finally {
      client.close();
    }
    const again = await runNexo(["migrate-storage", "--config", config, "--to", "redis"]);
    assert.equal(again.code, 0, again.output);
    assert.match(again.output, /certificates: 0 copied, 1 already there/);

    // Two new instances with no cert_dir of their own serve the migrated certificate without an order.
    nexos.push(...await startCluster(clusterBody, 2));
    const expected = await Promise.all(nexos.map((nexo) => getLikeAClient(nexo.port, host, world.root)));
    assert.equal(new Set(expected).size, 1);
    assert.equal(ordersFor(nexos, host), 0, "nothing was ordered again");
    const certs = await runNexo(["certs", "--config", config]);
    assert.equal(certs.code, 0, certs.output);
    assert.match(certs.output, new RegExp(host.replaceAll(".", "\\.")));

    // And back into files elsewhere: the same key, decrypted, mode 0600.
    const backConfig = `${back}/config.yaml`;
    await Deno.writeTextFile(backConfig, `base_dir: ${back}\n${clusterBody}`);
    const out = await runNexo(["migrate-storage", "--config", backConfig, "--to", "files"]);
    assert.equal(out.code, 0, out.output);
    assert.equal(await Deno.readTextFile(`${back}/certs/${host}/privkey.pem`), original);
    assert.equal((await Deno.stat(`${back}/certs/${host}/privkey.pem`)).mode! & 0o777, 0o600);
    const without = await runNexo(["migrate-storage", "--config", backConfig]);
    assert.equal(without.code, 1);
    assert.match(without.output, /needs --to redis .* or --to files/);
  } finally {
    await stopAll(nexos);
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(back, { recursive: true });
  }
});

Deno.test("nexo doctor says whether the shared Redis is reachable and writable, and how to fix it when not", async () => {
  await using redis = await startRedis({ password: "doctor-pass-1234" });
  const dir = await Deno.makeTempDir({ prefix: "nexo-doctor-storage-" });
  try {
    await Deno.writeTextFile(`${dir}/redis.pass`, "doctor-pass-1234\n");
    const config = (passwordFile: string) =>
      `base_dir: ${dir}\nissuer: acme\nhttp_listen: "127.0.0.1:0"\nacme: { directory: "https://127.0.0.1:9/dir" }\n` +
      `storage:\n  redis:\n    url: ${redis.url}\n    password_file: ${passwordFile}\n` +
      `proxies:\n  "app.example.com":\n    upstream: http://127.0.0.1:9\n`;
    const storageFindings = (run: DoctorRun) => run.findings.filter((f) => f.area === "storage");
    const good = storageFindings(await runDoctor(dir, config(`${dir}/redis.pass`)));
    assert.equal(good.length, 1, JSON.stringify(good));
    assert.equal(good[0]!.status, "ok");
    assert.match(good[0]!.message, /reachable and writable; 0 certificate\(s\) stored/);
    await Deno.writeTextFile(`${dir}/wrong.pass`, "not-the-password\n");
    const wrong = storageFindings(await runDoctor(dir, config(`${dir}/wrong.pass`)));
    assert.equal(wrong[0]?.status, "problem");
    assert.match(wrong[0]!.message, /WRONGPASS|invalid username-password/);
    assert.doesNotMatch(JSON.stringify(wrong), /not-the-password|doctor-pass-1234/);
    await redis.stop();
    const down = storageFindings(await runDoctor(dir, config(`${dir}/redis.pass`)));
    assert.equal(down[0]?.status, "problem");
    assert.match(down[0]!.message, /Cannot connect to redis:\/\/127\.0\.0\.1/);
    assert.match(String(down[0]!.fix), /redis-cli -h HOST -p PORT ping/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("storage.redis over TLS (rediss://) with a private CA: doctor reaches it, and a wrong CA is refused", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nexo-rediss-" });
  try {
    const ca = await LocalCa.loadOrCreate(`${dir}/ca`);
    const leaf = await ca.issue(["localhost"]);
    await Deno.writeTextFile(`${dir}/redis.crt`, leaf.certPem);
    await Deno.writeTextFile(`${dir}/redis.key`, leaf.keyPem);
    await LocalCa.loadOrCreate(`${dir}/other-ca`);
    await using redis = await startRedis({
      tls: { certFile: `${dir}/redis.crt`, keyFile: `${dir}/redis.key` },
    });
    const config = (caCert: string) =>
      `base_dir: ${dir}\nissuer: acme\nhttp_listen: "127.0.0.1:0"\nacme: { directory: "https://127.0.0.1:9/dir" }\n` +
      `storage:\n  redis:\n    url: ${redis.url}\n    ca_cert: ${caCert}\n` +
      `proxies:\n  "app.example.com":\n    upstream: http://127.0.0.1:9\n`;
    const storage = (run: DoctorRun) => run.findings.filter((f) => f.area === "storage");
    const good = storage(await runDoctor(dir, config(localCaRootPath(`${dir}/ca`))));
    assert.equal(good[0]?.status, "ok", JSON.stringify(good));
    assert.match(good[0]!.message, /reachable and writable/);
    const wrong = storage(await runDoctor(dir, config(localCaRootPath(`${dir}/other-ca`))));
    assert.equal(wrong[0]?.status, "problem", JSON.stringify(wrong));
    assert.match(wrong[0]!.message, /rediss:\/\/localhost:\d+\/0 .*invalid peer certificate: UnknownIssuer/);
    assert.match(String(wrong[0]!.fix), /ca_cert must name the CA that signed/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
