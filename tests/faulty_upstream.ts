// A raw-TCP upstream for end-to-end fault tests: each accepted connection runs a behaviour that can read
// request heads, write any bytes (valid HTTP or not), stall, close with FIN or reset with RST, while the
// server counts the connections open from its side. It speaks no HTTP itself; tests/upstreams.ts has the
// well-behaved apps. Built on node:net for resetAndDestroy(), a real RST (SO_LINGER 0): Deno.Conn cannot
// send one, and closing it with unread data did not either (Deno had already read the bytes).

import net from "node:net";

/** One upstream connection, as a behaviour sees it. Request bodies are not parsed (none is needed here). */
export interface Peer {
  /** The next request head (text before the blank line), or null once the connection closed. */
  nextRequest(): Promise<string | null>;
  /** Resolves once the bytes were handed to the kernel. */
  write(data: string | Uint8Array): Promise<void>;
  /** Closes with RST, as a crashed process or a dropping middlebox does. */
  reset(): void;
  /** Closes with FIN. */
  end(): void;
  /** Resolves once the connection is closed, by either side. */
  closed: Promise<void>;
}

class SocketPeer implements Peer {
  readonly closed: Promise<void>;
  #socket: net.Socket;
  #pending = "";
  #heads: string[] = [];
  #waiters: Array<(head: string | null) => void> = [];
  #gone = false;

  constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.setEncoding("latin1");
    // nexo closing its side first (after a reset, or when it gives up) is expected, not an error.
    socket.on("error", () => {});
    socket.on("data", (chunk: string) => {
      this.#pending += chunk;
      for (let end = this.#pending.indexOf("\r\n\r\n"); end !== -1; end = this.#pending.indexOf("\r\n\r\n")) {
        this.#deliver(this.#pending.slice(0, end));
        this.#pending = this.#pending.slice(end + 4);
      }
    });
    this.closed = new Promise((resolve) => {
      socket.on("close", () => {
        this.#gone = true;
        for (const waiter of this.#waiters.splice(0)) waiter(null);
        resolve();
      });
    });
  }

  nextRequest(): Promise<string | null> {
    const head = this.#heads.shift();
    if (head !== undefined) return Promise.resolve(head);
    if (this.#gone) return Promise.resolve(null);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  write(data: string | Uint8Array): Promise<void> {
    return new Promise((resolve) => {
      if (this.#gone) return resolve();
      this.#socket.write(typeof data === "string" ? Buffer.from(data, "latin1") : data, () => resolve());
    });
  }

  reset(): void {
    if (!this.#gone) this.#socket.resetAndDestroy();
  }

  end(): void {
    if (!this.#gone) this.#socket.end();
  }

  #deliver(head: string): void {
    const waiter = this.#waiters.shift();
    if (waiter) waiter(head);
    else this.#heads.push(head);
  }
}

export interface FaultyUpstream {
  url: string;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Connections open now, seen from the upstream's side (whoever closed them). */
  readonly open: number;
  /** Resolves once at most `count` connections are open; rejects after `timeoutMs`. */
  waitForOpenAtMost(count: number, timeoutMs: number): Promise<void>;
  /** Closes every open connection (FIN, then RST for whatever arrives), as a restarting upstream does. */
  closeConnections(): void;
  close(): Promise<void>;
}

/** Starts a raw upstream on 127.0.0.1:0 that runs `behave` for each accepted connection (index from 0). */
export async function startFaultyUpstream(
  behave: (peer: Peer, index: number) => Promise<void> | void,
): Promise<FaultyUpstream> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((socket) => {
    const index = accepted++;
    sockets.add(socket);
    const peer = new SocketPeer(socket);
    peer.closed.then(() => sockets.delete(socket));
    Promise.resolve().then(() => behave(peer, index)).catch(() => peer.reset());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    get accepted() {
      return accepted;
    },
    get open() {
      return sockets.size;
    },
    async waitForOpenAtMost(count, timeoutMs) {
      await waitFor(
        () => sockets.size <= count,
        timeoutMs,
        () => `${sockets.size} upstream connections open`,
      );
    },
    closeConnections() {
      for (const socket of sockets) socket.destroy();
    },
    async close() {
      const closed = new Promise((resolve) => server.close(resolve));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

/** Polls `done` every 25 ms; rejects with `describe()` after `timeoutMs`. */
async function waitFor(done: () => boolean, timeoutMs: number, describe: () => string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!done()) {
    if (performance.now() > deadline) throw new Error(`still ${describe()} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * One gate per upstream connection (by accept index): the upstream waits at its gate, the test opens it once
 * the client saw what it needed (the body had started), so the fault hits a response in flight.
 */
export function gates(count: number): { open(index: number): void; opened(index: number): Promise<void> } {
  const resolvers: Array<() => void> = [];
  const promises = Array.from(
    { length: count },
    (_, i) => new Promise<void>((resolve) => resolvers[i] = resolve),
  );
  return {
    open: (index) => resolvers[index]!(),
    opened: (index) => promises[index] ?? Promise.reject(new Error(`no gate for connection ${index}`)),
  };
}
