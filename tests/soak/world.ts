// The soak's world: real Pebble issuing 30-second certificates, pebble-challtestsrv, the fake Cloudflare with
// a seeded share of 500s, an echo upstream and one that restarts now and then, and nexo serving a wildcard
// and an exact host through them. Plus the config edits a year of operation brings, each checked as it lands.

import { dns01Config } from "../acme_world.ts";
import { startChallTestSrv } from "../challtestsrv.ts";
import { type FakeCloudflare, startFakeCloudflare } from "../fake_cloudflare.ts";
import { type NexoProcess, startNexo } from "../harness.ts";
import { type Pebble, startPebble } from "../pebble.ts";
import { closedPort, startEchoUpstream, type Upstream } from "../upstreams.ts";

export const TOKEN = "soak-token-7d1e5c3b9a";
/** Hosts under `*.example.com` (one wildcard certificate) and one exact host in another zone. */
export const STABLE_HOSTS = ["s1.example.com", "s2.example.com", "solo.example.org"];
/** Served by the upstream that restarts: 502 while it is down is expected. */
export const RESTARTING_HOST = "r.example.com";

/** An upstream that can be stopped and started on its port; it remembers when it was down. */
export interface RestartingUpstream {
  url: string;
  /** [start, end] of each outage, ms since the epoch. */
  outages: Array<[number, number]>;
  /** Stops for `downMs`, then serves again on the same port. */
  restart(downMs: number): Promise<void>;
  close(): Promise<void>;
}

function startRestartingUpstream(): RestartingUpstream {
  const port = closedPort();
  const serve = () =>
    Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, () => Response.json({ restarting: true }));
  let server = serve();
  const outages: Array<[number, number]> = [];
  return {
    url: `http://127.0.0.1:${port}`,
    outages,
    async restart(downMs) {
      const start = Date.now();
      await server.shutdown();
      await new Promise((resolve) => setTimeout(resolve, downMs));
      server = serve();
      outages.push([start, Date.now()]);
    },
    close: () => server.shutdown(),
  };
}

/** What the config names; edits change `churn` and `s2Base`. */
export interface RouteState {
  /** Hosts under the wildcard added and removed by edits. */
  churn: string[];
  /** Whether s2.example.com's upstream URL has the `/base/` path (the echo upstream reports it). */
  s2Base: boolean;
}

export interface World {
  nexo: NexoProcess;
  pebble: Pebble;
  cloudflare: FakeCloudflare;
  echo: Upstream;
  restarting: RestartingUpstream;
  rootPemFile: string;
  configFile: string;
  /** The config text for a route state (valid), and a broken one. */
  configText(state: RouteState): string;
  brokenText(): string;
  stop(): Promise<void>;
}

/** Starts everything and nexo, and waits until both certificates are installed. */
export async function startWorld(options: { seed: number; cloudflareFailureRate: number }): Promise<World> {
  const stack: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const undo of stack.reverse()) await undo().catch(() => {});
  };
  try {
    const dns = await startChallTestSrv();
    stack.push(() => dns.stop());
    const cloudflare = await startFakeCloudflare({
      token: TOKEN,
      zones: ["example.com", "example.org"],
      challtestsrv: dns,
    });
    stack.push(() => cloudflare.close());
    const pebble = await startPebble({ dnsServer: dns.dnsServer, validitySeconds: 30 });
    stack.push(() => pebble.stop());
    const echo = startEchoUpstream();
    stack.push(() => echo.close());
    const restarting = startRestartingUpstream();
    stack.push(() => restarting.close());
    const dir = await Deno.makeTempDir({ prefix: "nexo-soak-" });
    stack.push(() => Deno.remove(dir, { recursive: true }));
    const rootPemFile = `${dir}/pebble-root.pem`;
    const caFile = `${dir}/pebble-api-ca.pem`;
    await Deno.writeTextFile(caFile, pebble.apiCaPem);
    const head = `base_dir: ${dir}\nlisten: "127.0.0.1:0"\n` + dns01Config(
      {
        directoryUrl: pebble.directoryUrl,
        caFile,
        dnsServer: dns.dnsServer,
        apiBase: cloudflare.apiBase,
        token: TOKEN,
      },
      ["retry_interval: 1s"],
    );
    const configText = (state: RouteState) =>
      `${head}wildcards: ["*.example.com"]
proxies:
  "s1.example.com":
    upstream: ${echo.url}
  "s2.example.com":
    upstream: ${echo.url}${state.s2Base ? "/base/" : ""}
  "solo.example.org":
    upstream: ${echo.url}
  "${RESTARTING_HOST}":
    upstream: ${restarting.url}
${state.churn.map((host) => `  "${host}":\n    upstream: ${echo.url}\n`).join("")}`;
    const brokenText = () =>
      configText({ churn: [], s2Base: false }) + `  "broken.example.com":\n    upstrem: x\n`;
    // Flaky only once the first certificates are in: the soak is about living with it, not the first hour.
    // The harness writes base_dir itself; every later edit writes the whole file, base_dir included.
    const nexo = await startNexo(configText({ churn: [], s2Base: false }).replace(/^base_dir: .*\n/, ""), {
      dir,
    });
    stack.push(async () => void await nexo.stop());
    for (const names of ["*.example.com", "solo.example.org"]) {
      await nexo.waitForLog(
        (l) => l.msg === "certificate installed" && String(l.names).includes(names),
        60_000,
      );
    }
    await Deno.writeTextFile(rootPemFile, await pebble.issuerRootPem());
    cloudflare.startFlakiness(options.cloudflareFailureRate, options.seed, (draw) => ({
      status: 500,
      afterWrite: draw < 0.5,
    }));
    return {
      nexo,
      pebble,
      cloudflare,
      echo,
      restarting,
      rootPemFile,
      configFile: `${dir}/config.yaml`,
      configText,
      brokenText,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** How an edit reaches the file, cycled through: the ways editors, scripts and mounts write. */
export type EditMode = "in place" | "rename" | "symlink swap";
export const EDIT_MODES: readonly EditMode[] = ["in place", "rename", "symlink swap"];

let versions = 0;

/** Writes `text` to the config by `mode`; resolves when the write is complete (the clock starts then). */
export async function writeConfig(file: string, text: string, mode: EditMode): Promise<void> {
  const dir = file.slice(0, file.lastIndexOf("/"));
  switch (mode) {
    case "in place":
      await Deno.writeTextFile(file, text);
      return;
    case "rename":
      await Deno.writeTextFile(`${file}.tmp`, text);
      await Deno.rename(`${file}.tmp`, file);
      return;
    case "symlink swap": {
      const version = `${dir}/config.v${++versions}.yaml`;
      await Deno.writeTextFile(version, text);
      await Deno.symlink(version, `${dir}/config.link.tmp`);
      await Deno.rename(`${dir}/config.link.tmp`, file);
      return;
    }
  }
}
