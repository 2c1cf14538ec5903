// `nexo demo`: runs the real server on this machine with no domain and no account: the local CA
// (`issuer: internal`), high loopback ports, and a small example app as the upstream. It writes the config it
// uses to the demo directory (so users can read and edit it) and prints curl commands that verify TLS.

import { errorMessage } from "./error_message.ts";
import { join } from "./path.ts";
import { loadConfig } from "./config/parse.ts";
import { type Logger, printOut } from "./log.ts";
import { startServer } from "./server/run.ts";
import { localCaDir, localCaRootPath } from "./tls/local_ca.ts";
import { startInterval, stopTimer, type Timer } from "./timers.ts";
import { isoTime } from "./iso_time.ts";

export interface DemoOptions {
  httpsPort: number;
  httpPort: number;
  /** Directory for the demo's CA, certificates and config.yaml; created when missing. */
  dir: string;
  log: Logger;
  /** Resolves when the demo should stop (SIGINT/SIGTERM in the CLI). */
  untilSignal: () => Promise<string>;
  graceMs: number;
}

/** Runs the demo until `untilSignal` resolves; returns the exit code. */
export async function runDemo(options: DemoOptions): Promise<number> {
  // Listen for the stop signal first: Ctrl-C right after start must stop the demo cleanly.
  const stop = options.untilSignal();
  await Deno.mkdir(options.dir, { recursive: true, mode: 0o700 });
  const app = serveExampleApp();
  const configPath = join(options.dir, "config.yaml");
  await Deno.writeTextFile(configPath, demoConfig(options, app.addr.port));
  const config = await loadConfig(configPath);
  let server;
  try {
    server = await startServer(config, options.log);
  } catch (error) {
    options.log.error("cannot start", { error: errorMessage(error) });
    await options.log.settle();
    await app.shutdown();
    return 1;
  }
  await options.log.settle();
  printOut(
    instructions(options, server.rootCertPath ?? localCaRootPath(localCaDir(options.dir)), configPath),
  );
  const signal = await stop;
  options.log.info("shutting down", { signal, grace_ms: options.graceMs });
  await server.shutdown(options.graceMs);
  await app.shutdown();
  options.log.info("stopped");
  await options.log.settle();
  return 0;
}

function demoConfig(options: DemoOptions, appPort: number): string {
  return `# Written by \`nexo demo\`, whose example app listens on port ${appPort} only while the demo runs.
# To serve your own app with it: point app.localhost's upstream at that app, then run
# \`nexo server --config ${
    join(options.dir, "config.yaml")
  }\` (the demo writes this file again at each start).
base_dir: ${JSON.stringify(options.dir)}
issuer: internal
listen: "127.0.0.1:${options.httpsPort}"
http_listen: "127.0.0.1:${options.httpPort}"
# http_listen redirects to https on this port (443 unless set: behind port mapping that is what clients use).
public_https_port: ${options.httpsPort}
# HSTS binds a host name on every port: a year of it would make browsers refuse plain-HTTP dev servers on
# *.localhost too. Five minutes shows the header without pinning this machine's names.
hsts:
  max_age: 5m
proxies:
  "app.localhost":
    upstream: http://127.0.0.1:${appPort}
  "old.localhost":
    redirect: https://app.localhost:${options.httpsPort}
    status: 301
    keep_path: true
`;
}

function instructions(options: DemoOptions, rootCert: string, configPath: string): string {
  const https = (host: string) =>
    `curl --cacert ${rootCert} --resolve ${host}:${options.httpsPort}:127.0.0.1 https://${host}:${options.httpsPort}`;
  return `
nexo demo is running (config: ${configPath})
Its local CA's root certificate: ${rootCert}

Try, in another terminal:
  ${https("app.localhost")}/                  # proxied to the example app
  ${https("app.localhost")}/echo              # what the app received (X-Forwarded-*)
  curl -N ${https("app.localhost").slice(5)}/events   # server-sent events, one per second
  curl -i ${https("old.localhost").slice(5)}/some/path  # 301 redirect keeping the path
  curl -i -H 'Host: app.localhost' http://127.0.0.1:${options.httpPort}/  # plain HTTP -> 308 to https

Stop with Ctrl-C.
`;
}

/** The demo's upstream: a page, a request echo and a short event stream, on a random loopback port. */
function serveExampleApp(): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const url = new URL(req.url);
    if (url.pathname === "/echo") {
      return Response.json({
        method: req.method,
        path: url.pathname,
        headers: Object.fromEntries(req.headers),
      });
    }
    if (url.pathname === "/events") return eventStream();
    return new Response(
      `Hello from the example app behind nexo.\nYou asked for ${url.pathname} on ${
        req.headers.get("host")
      }.\n`,
      { headers: { "content-type": "text/plain; charset=utf-8" } },
    );
  });
}

function eventStream(): Response {
  let count = 0;
  let timer: Timer | undefined;
  const encoder = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      timer = startInterval(() => {
        count++;
        controller.enqueue(
          encoder.encode(`id: ${count}\ndata: tick ${count} at ${isoTime(Date.now())}\n\n`),
        );
        if (count === 5) {
          stopTimer(timer);
          controller.close();
        }
      }, 1000);
    },
    cancel() {
      stopTimer(timer);
    },
  });
  return new Response(body, {
    headers: { "content-type": "text/event-stream", "cache-control": "no-cache" },
  });
}
