// The HTTPS listener: TLS with a certificate chosen per SNI name, HTTP/1.1 and HTTP/2 (ALPN), one hyper
// connection per accepted socket, and the connection timeouts Deno.serve does not offer (request-head read
// timeout, idle keep-alive timeout). This is the only file that touches Deno's unstable SNI resolver and
// internal serve functions; tests/listen_internals_test.ts fails loudly if a Deno upgrade removes them.
// It knows nothing of routes or proxying: it calls `handler` for every request.

/** A certificate and key in PEM, as Deno.listenTls takes them. */
export interface TlsKeyPair {
  cert: string;
  key: string;
}

/** Per-request facts the handler cannot read from the Request itself. */
export interface ConnInfo {
  /** The client's IP address as seen on the socket. */
  remoteAddr: Deno.NetAddr;
}

export type Handler = (req: Request, info: ConnInfo) => Response | Promise<Response>;

export interface TlsServerOptions {
  hostname: string;
  port: number;
  /**
   * Returns the certificate for an SNI name, or undefined to fail the handshake (an unknown name gets no
   * certificate, so no default certificate leaks the names served). Called once per handshake.
   */
  resolveCertificate: (serverName: string) => Promise<TlsKeyPair | undefined>;
  handler: Handler;
  /** Called when the handler throws; must return the response to send (a 500 page). */
  onError: (error: unknown) => Response;
  /** Close a connection that has not sent a request head within this many ms of connecting (slow clients). */
  readTimeoutMs: number;
  /** Close a keep-alive connection that has had no new request for this many ms. */
  idleTimeoutMs: number;
}

export interface TlsServer {
  readonly addr: Deno.NetAddr;
  /** Number of open client connections. */
  readonly connectionCount: number;
  /**
   * Stops accepting, asks every connection to close after its in-flight requests (HTTP/2 GOAWAY, HTTP/1.1
   * close after the response), and resolves when all are closed or `graceMs` has passed (then the rest are
   * dropped). Idempotent.
   */
  shutdown(graceMs: number): Promise<void>;
}

interface HttpConnection {
  shutdown(): Promise<void>;
  finished: Promise<void>;
}

interface DenoInternals {
  serveHttpOnConnection(
    conn: Deno.Conn,
    signal: AbortSignal | undefined,
    handler: (req: Request) => Response | Promise<Response>,
    onError: (error: unknown) => Response,
    onListen: () => void,
  ): HttpConnection;
}

const SNI_RESOLVER = Symbol.for("unstableSniResolver");
/** How often connections are checked against the read and idle timeouts; bounds their precision. */
const SWEEP_INTERVAL_MS = 1_000;

/** Returns Deno's internal serve functions, or throws naming the Deno version that lacks them. */
export function denoInternals(): DenoInternals {
  // deno-lint-ignore no-explicit-any
  const internals = (Deno as any)[(Deno as any).internal];
  if (typeof internals?.serveHttpOnConnection !== "function") {
    throw new Error(
      `Deno ${Deno.version.deno} lacks Deno[Deno.internal].serveHttpOnConnection, which nexo needs for ` +
        `per-host certificates; run nexo with Deno 2.9.6 (the version in deno.json's README)`,
    );
  }
  return internals as DenoInternals;
}

interface ConnState {
  http: HttpConnection;
  inFlight: number;
  requests: number;
  lastActivity: number;
  closing: boolean;
}

/**
 * Starts the HTTPS server and resolves once it is listening. Throws Deno.errors.AddrInUse or
 * PermissionDenied when the address cannot be bound.
 */
export function serveTls(options: TlsServerOptions): TlsServer {
  const internals = denoInternals();
  const listener = Deno.listenTls({
    hostname: options.hostname,
    port: options.port,
    alpnProtocols: ["h2", "http/1.1"],
    [SNI_RESOLVER]: async (serverName: string) => {
      const pair = await options.resolveCertificate(serverName);
      if (!pair) throw new Error(`no certificate for "${serverName}"`);
      return pair;
    },
  } as unknown as Deno.ListenTlsOptions & Deno.TlsCertifiedKeyPem);
  const conns = new Set<ConnState>();
  let accepting = true;

  const sweep = setInterval(() => {
    const now = Date.now();
    for (const state of conns) {
      if (state.closing || state.inFlight > 0) continue;
      const limit = state.requests === 0 ? options.readTimeoutMs : options.idleTimeoutMs;
      if (now - state.lastActivity >= limit) closeConnection(state);
    }
  }, SWEEP_INTERVAL_MS);
  Deno.unrefTimer(sweep);

  function closeConnection(state: ConnState): void {
    state.closing = true;
    state.http.shutdown().catch(() => {});
  }

  function serveConnection(conn: Deno.TlsConn): void {
    const info: ConnInfo = { remoteAddr: conn.remoteAddr };
    const state = { inFlight: 0, requests: 0, lastActivity: Date.now(), closing: false } as ConnState;
    const handle = async (req: Request): Promise<Response> => {
      state.inFlight++;
      state.requests++;
      try {
        return await options.handler(req, info);
      } finally {
        state.inFlight--;
        state.lastActivity = Date.now();
      }
    };
    // No shared abort signal: Deno adds a listener per connection to it and never removes it (a leak), and
    // aborting it closes resources that may already be gone. Connections are closed through shutdown().
    state.http = internals.serveHttpOnConnection(conn, undefined, handle, options.onError, () => {});
    conns.add(state);
    // A reset by the client ends `finished` with an error; that is the client's business, not ours.
    state.http.finished.catch(() => {}).finally(() => conns.delete(state));
  }

  (async () => {
    while (accepting) {
      let conn: Deno.TlsConn;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (!accepting || error instanceof Deno.errors.BadResource) break;
        // EMFILE and friends: back off briefly instead of spinning on a failing accept.
        await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
      serveConnection(conn);
    }
  })();

  let stopped: Promise<void> | undefined;
  return {
    addr: listener.addr,
    get connectionCount() {
      return conns.size;
    },
    shutdown(graceMs: number): Promise<void> {
      stopped ??= (async () => {
        accepting = false;
        clearInterval(sweep);
        try {
          listener.close();
        } catch (error) {
          if (!(error instanceof Deno.errors.BadResource)) throw error;
        }
        const all = [...conns];
        for (const state of all) closeConnection(state);
        let timer: ReturnType<typeof setTimeout> | undefined;
        const grace = new Promise<void>((resolve) => timer = setTimeout(resolve, graceMs));
        await Promise.race([Promise.allSettled(all.map((s) => s.http.finished)), grace]);
        clearTimeout(timer);
        // Past the grace period the remaining connections are left to the process exit that follows.
      })();
      return stopped;
    },
  };
}
