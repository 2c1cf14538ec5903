// The benchmark's servers: an nginx upstream on plain HTTP, and three TLS reverse proxies in front of it
// (nexo, Caddy, nginx) sharing one certificate for "localhost". Each runs as the current user with its own
// directory under the run's temp dir. Load generation and reporting live elsewhere.

import { MALLOC_ENV, NO_CODE_CACHE, V8_FLAGS } from "../lib/v8_flags.ts";
import { join } from "node:path";
import { findFreePort, type Proc, spawnLogged, waitForOk } from "./process.ts";

/** The small response body and the path of the 1 MiB static file on the upstream. */
export const SMALL_PATH = "/";
export const LARGE_PATH = "/static/1mib.bin";
export const LARGE_BYTES = 1024 * 1024;
/** The 1 GiB download (`BenchEnv.hugeFile`) and the path that takes uploads of any size. */
export const HUGE_PATH = "/static/1gib.bin";
export const HUGE_BYTES = 1024 ** 3;
export const UPLOAD_PATH = "/upload";
/**
 * nexo's per-route request body limit for the run (its default is 10 MiB); Caddy has none by default and the
 * nginx proxy gets `client_max_body_size 0`.
 */
const NEXO_MAX_BODY = "2GiB";
const BENCH_PASSWORD_HASH = "$2b$04$1NBKj.KnmeHafJK7BwwDrObHn02akuo0KTWP62OW/Nq2pLbp1S64y";

/** Files and ports shared by every server of one run. */
export interface BenchEnv {
  /** The run's temp dir; each server makes a subdirectory. */
  dir: string;
  certFile: string;
  keyFile: string;
  /** The throwaway root that signed `certFile`, for curl's `--cacert`. */
  caFile: string;
  /**
   * A sparse file of `HUGE_BYTES` zeros (it takes no disk): the upstream serves it at `HUGE_PATH` and curl
   * uploads it.
   */
  hugeFile: string;
}

/** A running server; `readyMs` is the time from spawn to its first 200 as seen by curl. */
export interface RunningServer {
  name: string;
  /** Base URL, e.g. `https://localhost:41234`. */
  url: string;
  proc: Proc;
  logPath: string;
  readyMs: number;
}

/**
 * The servers under test, in report order: nexo, the floor (a bare Deno TLS proxy, floor_proxy.ts: what Deno
 * itself costs for the same job), Caddy and nginx.
 */
export const PROXY_NAMES = ["nexo", "floor", "Caddy", "nginx"] as const;
export type ProxyName = typeof PROXY_NAMES[number];

/**
 * Starts the nginx upstream: `SMALL_PATH` answers "hello world\n", `LARGE_PATH` is a 1 MiB file, `HUGE_PATH`
 * is `env.hugeFile`, and `UPLOAD_PATH` streams request bodies of any size to `uploadSinkUrl`.
 */
export async function startUpstream(env: BenchEnv, uploadSinkUrl: string): Promise<RunningServer> {
  const prefix = await makeDir(env.dir, "upstream");
  await Deno.mkdir(join(prefix, "www/static"), { recursive: true });
  // getRandomValues is capped at 64 KiB per call; fill the file in slices.
  const body = new Uint8Array(LARGE_BYTES);
  for (let i = 0; i < LARGE_BYTES; i += 65_536) crypto.getRandomValues(body.subarray(i, i + 65_536));
  await Deno.writeFile(join(prefix, "www", LARGE_PATH), body);
  const port = findFreePort();
  // nginx cannot be the upload sink itself: `return 204` answers at once and discards the body in the
  // background (checked: it answered 1 KB into a 1 GiB body), so a proxy would not have to carry the rest;
  // `mirror_request_body on` reads it all first but spools it to a temp file, capping uploads at ~250 MB/s
  // here even on tmpfs. So nginx streams the body, unbuffered, to a sink that reads it to the end before it
  // answers (upload_sink.ts).
  const server = `
    server {
      listen 127.0.0.1:${port};
      location = / { default_type text/plain; return 200 "hello world\\n"; }
      location /static/ { root ${join(prefix, "www")}; }
      location = ${HUGE_PATH} { alias ${env.hugeFile}; }
      location = ${UPLOAD_PATH} {
        client_max_body_size 0;
        proxy_request_buffering off;
        proxy_http_version 1.1;
        proxy_pass ${uploadSinkUrl};
      }
    }`;
  // One worker: the upstream must not take a core from the proxy being measured more than it needs to.
  await Deno.writeTextFile(join(prefix, "nginx.conf"), renderNginxConf(prefix, 1, server));
  return await startNginx("upstream", prefix, `http://127.0.0.1:${port}`);
}

/**
 * What nexo loads beside proxying, for the rows that price each optional part: `issuer: internal` (the local
 * CA, the default run), `issuer: acme` with its certificate already on disk (the ACME supervisor, no
 * worker), and the default run plus the admin listener.
 */
export type NexoVariant = "internal" | "acme" | "admin" | "access" | "storage" | "dashboard";

/** Starts one proxy by name in front of `upstreamUrl` (nexo as `variant`, "internal" unless given). */
export function startProxy(
  name: ProxyName,
  env: BenchEnv,
  upstreamUrl: string,
  variant: NexoVariant = "internal",
): Promise<RunningServer> {
  switch (name) {
    case "nexo":
      return startNexo(env, upstreamUrl, variant);
    case "floor":
      return startFloor(env, upstreamUrl);
    case "Caddy":
      return startCaddy(env, upstreamUrl);
    case "nginx":
      return startNginxProxy(env, upstreamUrl);
  }
}

/**
 * `nexo server` as the benchmark runs it: the bundle (dist/, which bench/run.ts and bench/acme_cost.ts build
 * first with tests/bundle.ts), with the flags (`--no-code-cache`, the V8 flags) and the environment
 * (MALLOC_ENV) nexo ships with in lib/v8_flags.ts, as `deno task start`, the unit and the Dockerfile run it.
 */
export function nexoServerCommand(configPath: string): { args: string[]; env: Record<string, string> } {
  const mainJs = new URL("../dist/main.js", import.meta.url).pathname;
  return {
    args: [
      "run",
      "-A",
      NO_CODE_CACHE,
      V8_FLAGS,
      mainJs,
      "server",
      "--config",
      configPath,
      "--log-format",
      "json",
    ],
    env: { ...MALLOC_ENV },
  };
}

async function startNexo(env: BenchEnv, upstreamUrl: string, variant: NexoVariant): Promise<RunningServer> {
  const dir = await makeDir(env.dir, "nexo");
  const certDir = join(dir, "certs/localhost");
  await Deno.mkdir(certDir, { recursive: true });
  await Deno.copyFile(env.certFile, join(certDir, "fullchain.pem"));
  await Deno.copyFile(env.keyFile, join(certDir, "privkey.pem"));
  const port = findFreePort();
  // The shared store variant: its own redis-server, holding the same certificate (as migrate-storage puts it).
  const redis = variant === "storage" ? await startBenchRedis(dir, join(dir, "certs")) : null;
  // The cert_dir certificate covers "localhost", so the internal CA mints nothing, the ACME variant orders
  // nothing (its directory is never contacted), and every proxy serves the same certificate.
  const config = [
    `base_dir: ${dir}`,
    `cert_dir: ${join(dir, "certs")}`,
    `listen: 127.0.0.1:${port}`,
    ...(variant === "acme" || variant === "storage"
      ? [`issuer: acme`, `acme:`, `  directory: https://127.0.0.1:9/directory`]
      : [`issuer: internal`]),
    ...(redis ? [`storage:`, `  redis: { url: "${redis.url}", prefix: bench }`] : []),
    ...(variant === "admin" ? [`admin:`, `  listen: 127.0.0.1:${findFreePort()}`] : []),
    // The dashboard loaded (a bcrypt hash of "bench", cost 4): never signed in to, as most of the time.
    ...(variant === "dashboard"
      ? [`admin:`, `  listen: 127.0.0.1:${findFreePort()}`, `  password_hash: "${BENCH_PASSWORD_HASH}"`]
      : []),
    // GitHub sign-in loaded too (lib/access/github_auth.ts and its signing key), for a route the bench never asks.
    ...(variant === "access"
      ? [`auth:`, `  host: auth.localhost`, `  github: { client_id: bench, client_secret: bench-secret }`]
      : []),
    `proxies:`,
    `  "localhost":`,
    `    upstream: ${upstreamUrl}`,
    `    access_log: false`,
    `    max_body: ${NEXO_MAX_BODY}`,
    // The access rules loaded (lib/access/), letting the bench client in.
    ...(variant === "access"
      ? [
        `    allow: ["127.0.0.0/8", "::1"]`,
        `    deny: ["203.0.113.0/24"]`,
        `    rate_limit: { requests: 1000000, per: 1s }`,
        `  "private.localhost":`,
        `    upstream: ${upstreamUrl}`,
        `    github_auth: { allowed_users: [octocat] }`,
      ]
      : []),
    ``,
  ].join("\n");
  const configPath = join(dir, "config.yaml");
  await Deno.writeTextFile(configPath, config);
  const command = nexoServerCommand(configPath);
  const server = await startAndWait("nexo", Deno.execPath(), command.args, {
    dir,
    env,
    url: `https://localhost:${port}`,
    childEnv: command.env,
  });
  if (redis === null) return server;
  const stop = async () => {
    await server.proc.stop();
    await redis.proc.stop();
  };
  return { ...server, proc: { pid: server.proc.pid, exited: server.proc.exited, stop } };
}

/**
 * A redis-server on a free port for the "storage" variant (no persistence), seeded with cert_dir's
 * certificates through the Storage contract, as `nexo migrate-storage --to redis` copies them.
 */
async function startBenchRedis(dir: string, certDir: string): Promise<{ url: string; proc: Proc }> {
  const port = findFreePort();
  const proc = spawnLogged(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir],
    { logPath: join(dir, "redis.log") },
  );
  const url = `redis://127.0.0.1:${port}/0`;
  const { openSharedStore } = await import("../lib/storage/shared_store.ts");
  const { copyStorage } = await import("../lib/storage/copy_storage.ts");
  const { FileStorage } = await import("../lib/storage/file_storage.ts");
  const shared = await openSharedStore({
    url,
    prefix: "bench",
    password: null,
    caCertsPem: [],
    encryptionKey: null,
  });
  try {
    for (let attempt = 0;; attempt++) {
      try {
        await shared.client.command(["PING"]);
        break;
      } catch (error) {
        if (attempt >= 100) throw error;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    await copyStorage(new FileStorage(certDir), shared.certs, { prefixes: [""], overwrite: true });
  } finally {
    shared.close();
  }
  return { url, proc };
}

async function startFloor(env: BenchEnv, upstreamUrl: string): Promise<RunningServer> {
  const dir = await makeDir(env.dir, "floor");
  const port = findFreePort();
  const script = new URL("./floor_proxy.ts", import.meta.url).pathname;
  // Run as nexo runs (same V8 flags and malloc setting), so that the difference is nexo's code, not the
  // runtime's settings.
  const args = [
    "run",
    "-A",
    NO_CODE_CACHE,
    V8_FLAGS,
    script,
    String(port),
    env.certFile,
    env.keyFile,
    upstreamUrl,
  ];
  return await startAndWait("floor", Deno.execPath(), args, {
    dir,
    env,
    url: `https://localhost:${port}`,
    childEnv: { ...MALLOC_ENV },
  });
}

/**
 * The floor of the ACME rows (bench/floor_acme.ts): a bare Deno TLS server, run as nexo runs, that runs one
 * ACME-like job in a fresh Web Worker per SIGUSR1, against the CA at `directoryUrl` (trusting `caFile`).
 * Resolves once it has answered its first 200.
 */
export async function startFloorAcme(
  env: BenchEnv,
  ca: { directoryUrl: string; caFile: string },
): Promise<RunningServer> {
  const dir = await makeDir(env.dir, "floor-acme");
  const port = findFreePort();
  const script = new URL("./floor_acme.ts", import.meta.url).pathname;
  const args = ["run", "-A", "--unstable-worker-options", NO_CODE_CACHE, V8_FLAGS, script, String(port)];
  args.push(env.certFile, env.keyFile, ca.directoryUrl, ca.caFile, dir);
  return await startAndWait("floor", Deno.execPath(), args, {
    dir,
    env,
    url: `https://localhost:${port}`,
    childEnv: { ...MALLOC_ENV },
  });
}

async function startCaddy(env: BenchEnv, upstreamUrl: string): Promise<RunningServer> {
  const dir = await makeDir(env.dir, "caddy");
  const port = findFreePort();
  // admin off and a private HOME/XDG dirs: Caddy writes nothing outside `dir`. http_port moves the
  // (disabled) redirect listener off :80, which an unprivileged user cannot bind.
  const caddyfile = `{
  admin off
  auto_https disable_redirects
  http_port ${findFreePort()}
  storage file_system ${join(dir, "data")}
  log default {
    output discard
  }
}

https://localhost:${port} {
  bind 127.0.0.1
  tls ${env.certFile} ${env.keyFile}
  reverse_proxy ${new URL(upstreamUrl).host}
}
`;
  const configPath = join(dir, "Caddyfile");
  await Deno.writeTextFile(configPath, caddyfile);
  const args = ["run", "--config", configPath, "--adapter", "caddyfile"];
  const childEnv = { HOME: dir, XDG_DATA_HOME: join(dir, "data"), XDG_CONFIG_HOME: join(dir, "config") };
  return await startAndWait("Caddy", "caddy", args, {
    dir,
    env,
    url: `https://localhost:${port}`,
    childEnv,
  });
}

async function startNginxProxy(env: BenchEnv, upstreamUrl: string): Promise<RunningServer> {
  const prefix = await makeDir(env.dir, "nginx");
  const port = findFreePort();
  const server = `
    upstream backend {
      server ${new URL(upstreamUrl).host};
      keepalive 64;
    }
    server {
      listen 127.0.0.1:${port} ssl http2;
      ssl_certificate ${env.certFile};
      ssl_certificate_key ${env.keyFile};
      # Uploads of any size, streamed as they arrive like nexo and Caddy do: by default nginx would first
      # spool the whole body to a temp file (proxy_request_buffering on).
      client_max_body_size 0;
      location / {
        proxy_request_buffering off;
        proxy_pass http://backend;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
      }
    }`;
  await Deno.writeTextFile(join(prefix, "nginx.conf"), renderNginxConf(prefix, "auto", server));
  return await startNginx("nginx", prefix, `https://localhost:${port}`, env.caFile);
}

function renderNginxConf(prefix: string, workers: number | "auto", server: string): string {
  // Debian's build points the temp paths at /var/lib/nginx; every path here stays under `prefix`.
  // As root, nginx's workers would switch to "nobody" and lose access to the 0700 temp dirs.
  const user = Deno.uid() === 0 ? "user root;\n" : "";
  return `${user}worker_processes ${workers};
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path ${prefix}/tmp/body;
  proxy_temp_path ${prefix}/tmp/proxy;
  fastcgi_temp_path ${prefix}/tmp/fastcgi;
  uwsgi_temp_path ${prefix}/tmp/uwsgi;
  scgi_temp_path ${prefix}/tmp/scgi;
  ${server}
}
`;
}

async function startNginx(
  name: string,
  prefix: string,
  url: string,
  caFile?: string,
): Promise<RunningServer> {
  await Deno.mkdir(join(prefix, "tmp"), { recursive: true });
  await Deno.mkdir(join(prefix, "logs"), { recursive: true });
  const args = [
    "-p",
    prefix,
    "-c",
    join(prefix, "nginx.conf"),
    "-e",
    join(prefix, "error.log"),
    "-g",
    "daemon off;",
  ];
  const logPath = join(prefix, "stdout.log");
  const startedAt = performance.now();
  const proc = spawnLogged("nginx", args, { logPath });
  return await awaitReady({ name, url, proc, logPath, startedAt, caFile });
}

async function startAndWait(
  name: string,
  cmd: string,
  args: string[],
  options: { dir: string; env: BenchEnv; url: string; childEnv?: Record<string, string> },
): Promise<RunningServer> {
  const logPath = join(options.dir, "output.log");
  const startedAt = performance.now();
  const proc = spawnLogged(cmd, args, { logPath, ...(options.childEnv ? { env: options.childEnv } : {}) });
  return await awaitReady({ name, url: options.url, proc, logPath, startedAt, caFile: options.env.caFile });
}

async function awaitReady(
  s: {
    name: string;
    url: string;
    proc: Proc;
    logPath: string;
    startedAt: number;
    caFile?: string | undefined;
  },
): Promise<RunningServer> {
  try {
    const readyMs = await waitForOk(s.url + SMALL_PATH, {
      proc: s.proc,
      logPath: s.logPath,
      startedAt: s.startedAt,
      ...(s.caFile ? { caFile: s.caFile } : {}),
    });
    return { name: s.name, url: s.url, proc: s.proc, logPath: s.logPath, readyMs };
  } catch (err) {
    await s.proc.stop();
    throw err;
  }
}

async function makeDir(base: string, name: string): Promise<string> {
  // A fresh directory per start: cold-start runs must not reuse a previous instance's state.
  return await Deno.makeTempDir({ dir: base, prefix: `${name}-` });
}
