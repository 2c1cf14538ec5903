// A TCP forwarder for fault tests: it stands in a server's network path on a fixed loopback port, so a test can
// take the server "down" (connections refused) and bring it back with its state intact. It does not look at
// the bytes it forwards (TLS passes through untouched, verified end to end by the client).

/**
 * A TCP forwarder on a fixed loopback port to a server on `targetPort`: the server's network path. `close()`
 * stops listening and cuts open connections, so new ones are refused as by a server that is down; `open()`
 * listens on the same port again.
 */
export class TcpGate {
  readonly port: number;
  readonly #targetPort: number;
  #listener: Deno.Listener | null = null;
  #accepting: Promise<void> = Promise.resolve();
  readonly #conns = new Set<Deno.Conn>();
  readonly #forwards = new Set<Promise<void>>();

  private constructor(port: number, targetPort: number) {
    this.port = port;
    this.#targetPort = targetPort;
  }

  /**
   * Listens on a free port below Linux's ephemeral range (ip_local_port_range starts at 32768 by default):
   * while the gate is closed its port is free, and a port from the ephemeral range could be handed to
   * another listener asking for port 0 (nexo's own, in one run), which would then answer for the CA.
   */
  static start(targetPort: number): TcpGate {
    for (let attempt = 0;; attempt++) {
      const port = 20_000 + Math.floor(Math.random() * 10_000);
      try {
        const gate = new TcpGate(port, targetPort);
        gate.#serve(Deno.listen({ hostname: "127.0.0.1", port }));
        return gate;
      } catch (error) {
        if (!(error instanceof Deno.errors.AddrInUse) || attempt >= 20) throw error;
      }
    }
  }

  open(): void {
    if (this.#listener === null) this.#serve(Deno.listen({ hostname: "127.0.0.1", port: this.port }));
  }

  async close(): Promise<void> {
    this.#listener?.close();
    this.#listener = null;
    await this.#accepting;
    for (const conn of this.#conns) conn.close();
    this.#conns.clear();
    await Promise.all(this.#forwards);
  }

  #serve(listener: Deno.Listener): void {
    this.#listener = listener;
    this.#accepting = (async () => {
      try {
        for await (const client of listener) this.#track(this.#forward(client));
      } catch {
        // closed
      }
    })();
  }

  #track(forward: Promise<void>): void {
    this.#forwards.add(forward);
    forward.finally(() => this.#forwards.delete(forward));
  }

  async #forward(client: Deno.Conn): Promise<void> {
    this.#conns.add(client);
    let server: Deno.Conn;
    try {
      server = await Deno.connect({ hostname: "127.0.0.1", port: this.#targetPort });
    } catch {
      this.#drop(client);
      return;
    }
    this.#conns.add(server);
    await Promise.all([pump(client, server), pump(server, client)]);
    this.#drop(client);
    this.#drop(server);
  }

  #drop(conn: Deno.Conn): void {
    if (!this.#conns.delete(conn)) return;
    try {
      conn.close();
    } catch {
      // already closed
    }
  }
}

/** Copies `from` to `to` until EOF or an error (a closed gate), then half-closes `to`. */
async function pump(from: Deno.Conn, to: Deno.Conn): Promise<void> {
  const buffer = new Uint8Array(16 * 1024);
  try {
    for (;;) {
      const n = await from.read(buffer);
      if (n === null) break;
      for (let written = 0; written < n;) written += await to.write(buffer.subarray(written, n));
    }
    await to.closeWrite();
  } catch {
    // The gate closed the connection, or the peer reset it.
  }
}
