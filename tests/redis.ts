// Runs a real Redis (Debian `redis-server`) for tests: on a free loopback port, without persistence, in a temp
// directory, optionally with a password. `stop()` and `start()` again on the same port model an outage.

import { closedPort } from "./upstreams.ts";

export interface RedisServer {
  /** "redis://127.0.0.1:port/0", or "rediss://localhost:port/0" with TLS (without the password). */
  url: string;
  port: number;
  /**
   * Stops the server (SIGTERM) and waits for it; `start()` brings it back on the same port, empty unless
   * started `persistent`.
   */
  stop(): Promise<void>;
  start(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const READY_TIMEOUT_MS = 10_000;

/** Starts redis-server and resolves once it answers PING. Throws with its output when it cannot start. */
export async function startRedis(
  options: {
    password?: string;
    persistent?: boolean;
    /** Serve TLS only (rediss://localhost), with this certificate and key (PEM files). */
    tls?: { certFile: string; keyFile: string };
  } = {},
): Promise<RedisServer> {
  const dir = await Deno.makeTempDir({ prefix: "nexo-redis-" });
  const port = closedPort();
  let child: Deno.ChildProcess | null = null;
  const start = async () => {
    child = new Deno.Command("redis-server", {
      args: [
        ...(options.tls
          ? [
            "--port",
            "0",
            "--tls-port",
            String(port),
            "--tls-cert-file",
            options.tls.certFile,
            "--tls-key-file",
            options.tls.keyFile,
            "--tls-auth-clients",
            "no",
          ]
          : ["--port", String(port)]),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        // Persistent: every write reaches the append-only file before Redis answers, so stop() and start()
        // model an outage that loses nothing (a restart of a Redis with its data, as operators run it).
        "--appendonly",
        options.persistent ? "yes" : "no",
        ...(options.persistent ? ["--appendfsync", "always"] : []),
        "--dir",
        dir,
        ...(options.password ? ["--requirepass", options.password] : []),
      ],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      try {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        conn.close();
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    throw new Error(`redis-server did not start on port ${port} (apt-get install redis-server)`);
  };
  const stop = async () => {
    const running = child as Deno.ChildProcess | null;
    child = null;
    if (running === null) return;
    try {
      running.kill("SIGTERM");
    } catch {
      // exited already
    }
    await running.output();
  };
  await start();
  return {
    url: options.tls ? `rediss://localhost:${port}/0` : `redis://127.0.0.1:${port}/0`,
    port,
    stop,
    start,
    [Symbol.asyncDispose]: async () => {
      await stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}
