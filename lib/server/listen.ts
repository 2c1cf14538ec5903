// The HTTPS listener: TLS with a certificate chosen per SNI name, HTTP/1.1 and HTTP/2 (ALPN), served by Deno's
// native hyper server. This is the only file that touches Deno's unstable SNI resolver and internal serve
// functions; tests/listen_internals_test.ts fails loudly if a Deno upgrade removes or breaks them.
// It knows nothing of routes or proxying: it calls `handler` for every request.
//
// Why serveHttpOnListener and not one serveHttpOnConnection per accepted socket: the per-connection variant
// would let nexo enforce a request-head timeout and an idle keep-alive timeout itself, but on Deno 2.9.6 it
// closes every upgraded connection the moment the upgrade completes (a WebSocket opens and is closed at once
// with 1005; measured, see DEVELOPERS.md). WebSockets are essential to the apps nexo fronts, so nexo serves on
// the listener and accepts that hyper, as Deno configures it, applies neither timeout.

import { EXPIRY_MARGIN_MS, type HoldKind, ListenerGeneration, MAX_HOLD_MS } from "./listener_generation.ts";
import { startTimer, stopTimer, type Timer } from "../timers.ts";

/** A certificate and key in PEM, as Deno.listenTls takes them, and when the certificate expires (ms). */
export interface TlsKeyPair {
  cert: string;
  key: string;
  notAfterMs?: number;
}

/** Per-request facts the handler cannot read from the Request itself. */
export interface ConnInfo {
  /** The client's IP address as seen on the socket. */
  remoteAddr: Deno.NetAddr;
  /**
   * Keeps the listener that accepted this request from being shut down until the returned release is called:
   * a replaced listener's shutdown closes every WebSocket it upgraded ("upgrade") and cuts every request body
   * it is still reading ("request").
   */
  hold(kind: HoldKind): () => void;
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
  /**
   * Exact host names (no wildcards) whose certificate each new listener looks up at once, by a TLS handshake
   * to itself, before clients do (see warmUp()); names with a certificate already, so that warming changes
   * nothing but the cache. Optional.
   */
  warmNames?: () => readonly string[];
  /** Called when a replaced listener's shutdown begins (for one log line). Optional. */
  onRetired?: (retirement: Retirement) => void;
}

export interface TlsServer {
  /** The address serving now (moveTo changes it). */
  readonly addr: Deno.NetAddr;
  /**
   * Makes new TLS handshakes ask `resolveCertificate` again: binds a fresh listener to the same address and
   * retires the old one (see ListenerGeneration: shut down gracefully at once, or once the WebSockets it
   * holds close, before any certificate in its cache expires, within a day). Open connections keep the
   * certificate they negotiated. A no-op after shutdown.
   */
  refresh(): void;
  /**
   * Refreshes only when the listener's cache is wrong: when a name it failed can now be served, or a cached
   * certificate expires within `urgentWithinMs`, or (with `anyStale`) when any cached certificate has a
   * newer one. Each refresh retires a listener, which costs clients racing its shutdown their connection
   * (DEVELOPERS.md), so a reload adding hosts no client asked for yet, or a periodic check that finds
   * nothing stale, replaces nothing. Resolves with whether it refreshed.
   */
  refreshIfStale(options: { urgentWithinMs: number; anyStale: boolean }): Promise<boolean>;
  /**
   * Serves on another address from now on (a reloaded `listen`): binds it first, then closes the old
   * listener gracefully. Throws (AddrInUse, PermissionDenied) without touching the old one when it cannot bind.
   */
  moveTo(hostname: string, port: number): void;
  /**
   * Stops accepting, asks every connection to close after its in-flight requests (HTTP/2 GOAWAY, HTTP/1.1
   * close after the response), and resolves when all are closed or `graceMs` has passed (the rest are left
   * to the process exit that follows). Idempotent.
   */
  shutdown(graceMs: number): Promise<void>;
}

interface HttpServer {
  shutdown(): Promise<void>;
  finished: Promise<void>;
}

interface DenoInternals {
  /** The `Deno.connectTls` option key for an SNI name other than the host connected to. */
  serverNameSymbol: symbol;
  serveHttpOnListener(
    listener: Deno.Listener,
    signal: AbortSignal | undefined,
    handler: (req: Request, info: { remoteAddr: Deno.NetAddr }) => Response | Promise<Response>,
    onError: (error: unknown) => Response,
    onListen: () => void,
  ): HttpServer;
}

const SNI_RESOLVER = Symbol.for("unstableSniResolver");
export const MIGRATE_REQ = "/proc/sys/net/ipv4/tcp_migrate_req";

/**
 * Turns on Linux's tcp_migrate_req (5.14+) when it is off and nexo may write it (root, or a container's own
 * network namespace): then connections still queued on a listener that refresh() closes move to its
 * SO_REUSEPORT successor instead of being reset. Returns what happened, for one log line; never throws.
 * "not readable": the file could not be read (Deno 2.9.6 lets a process read /proc/sys only with
 * --allow-all), so whether it is on is unknown; "not permitted": it is off and nexo may not turn it on.
 * `path` is for tests.
 */
export async function enableListenerHandover(path: string = MIGRATE_REQ): Promise<
  "enabled" | "already on" | "unavailable" | "not readable" | "not permitted"
> {
  let value: string;
  try {
    value = (await Deno.readTextFile(path)).trim();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return "unavailable";
    return "not readable";
  }
  if (value === "1") return "already on";
  try {
    await Deno.writeTextFile(path, "1\n");
    return "enabled";
  } catch {
    return "not permitted";
  }
}

/** Returns Deno's internal serve function, or throws naming the Deno version that lacks it. */
export function denoInternals(): DenoInternals {
  // deno-lint-ignore no-explicit-any
  const internals = (Deno as any)[(Deno as any).internal];
  if (typeof internals?.serveHttpOnListener !== "function") {
    throw new Error(
      `Deno ${Deno.version.deno} lacks Deno[Deno.internal].serveHttpOnListener, which nexo needs for ` +
        `per-host certificates; run nexo with Deno 2.9.6 (the version the README pins)`,
    );
  }
  return internals as DenoInternals;
}

/** At most this many names are warmed per listener; more are looked up by their first client. */
const MAX_WARM_NAMES = 500;
const WARM_TIMEOUT_MS = 5_000;

/**
 * Asks a new listener for each name's certificate with one TLS handshake from nexo itself, so that clients
 * find it in Deno's per-listener cache. Deno 2.9.6's cache has a race: a handshake that arrives just after a
 * name's lookup was answered, but before the answer is stored, fails (0 to 3 of 50 simultaneous first
 * handshakes per name, measured; none once the name is cached). Right after a listener starts or replaces
 * another, a browser opening several connections at once could hit it; warming shrinks that window from
 * "until the first client" to the few milliseconds of these handshakes. The handshakes need not succeed
 * (a certificate from the local CA does not verify here): the server side has looked the name up by then.
 * Runs in the background; never throws.
 */
function warmUp(addr: Deno.NetAddr, names: readonly string[], serverNameSymbol: symbol): void {
  const hostname = addr.hostname === "0.0.0.0" ? "127.0.0.1" : addr.hostname === "::" ? "::1" : addr.hostname;
  for (const name of names.slice(0, MAX_WARM_NAMES)) {
    (async () => {
      const conn = await Deno.connectTls({
        hostname,
        port: addr.port,
        [serverNameSymbol]: name,
      } as Deno.ConnectTlsOptions);
      let closed = false;
      const close = () => {
        if (closed) return;
        closed = true;
        conn.close();
      };
      // Closing the connection also ends a handshake that hangs.
      const timer = startTimer(close, WARM_TIMEOUT_MS);
      try {
        await conn.handshake();
      } finally {
        stopTimer(timer);
        close();
      }
    })().catch(() => {});
  }
}

/**
 * Throws Deno.errors.AddrInUse when something already listens on the address. The TLS listener binds with
 * SO_REUSEPORT (for refresh()), which would otherwise let a second nexo, or any process of the same user
 * that also sets it, join the port silently and take a share of the connections. A plain bind, without
 * SO_REUSEPORT, fails on a port anyone holds; it is released at once. Port 0 picks a free port anyway.
 */
function ensureAddressFree(hostname: string, port: number): void {
  if (port === 0) return;
  Deno.listen({ hostname, port, transport: "tcp" }).close();
}

/** A replaced listener's shutdown, as it begins: how long it was held, and the WebSockets it still closes. */
export interface Retirement {
  addr: Deno.NetAddr;
  /** How long it was kept for WebSockets after being replaced, ms (0 when shut down at once). */
  heldMs: number;
  /** WebSockets still open on it, closed by this shutdown (its deadline came first). */
  webSockets: number;
}

/**
 * Starts the HTTPS server; it is listening when this returns. Throws Deno.errors.AddrInUse or
 * PermissionDenied when the address cannot be bound.
 */
export function serveTls(options: TlsServerOptions): TlsServer {
  const internals = denoInternals();
  const start = (hostname: string, port: number) => {
    const generation = new ListenerGeneration();
    const listener = Deno.listenTls(
      {
        hostname,
        port,
        // Lets refresh() bind a second listener to the same address before the first one closes.
        reusePort: true,
        alpnProtocols: ["h2", "http/1.1"],
        [SNI_RESOLVER]: async (serverName: string) => {
          // Deno caches whatever this answers (failures too) for the listener's life: mirror it.
          let pair: TlsKeyPair | undefined;
          try {
            pair = await options.resolveCertificate(serverName);
          } finally {
            generation.record(serverName, pair);
          }
          if (!pair) throw new Error(`no certificate for "${serverName}"`);
          return { cert: pair.cert, key: pair.key };
        },
      } as unknown as Deno.ListenTlsOptions & Deno.TlsCertifiedKeyPem,
    );
    const hold = (kind: HoldKind) => generation.hold(kind);
    const server = internals.serveHttpOnListener(
      listener,
      undefined,
      (req, info) => options.handler(req, { remoteAddr: info.remoteAddr, hold }),
      options.onError,
      () => {},
    );
    // A failing accept loop ends `finished` with an error; shutdown() is how nexo stops it on purpose.
    server.finished.catch(() => {});
    return { addr: listener.addr as Deno.NetAddr, server, generation };
  };

  ensureAddressFree(options.hostname, options.port);
  let current = start(options.hostname, options.port);
  const warm = () => {
    if (options.warmNames) warmUp(current.addr, options.warmNames(), internals.serverNameSymbol);
  };
  warm();
  let hostname = options.hostname;
  const draining = new Set<Promise<void>>();
  const retiring = new Set<ListenerGeneration>();
  let stopped: Promise<void> | undefined;
  const retire = async (previous: ReturnType<typeof start>, holdForWebSockets: boolean) => {
    const { generation } = previous;
    // A name this listener failed that can be served now would keep failing there: no holding it then.
    let failsServable = false;
    for (const [name, answer] of generation.answers) {
      if (answer === null && await options.resolveCertificate(name).catch(() => undefined)) {
        failsServable = true;
        break;
      }
    }
    // A listener moved off its address is not held: the operator wants that address free.
    const deadline = failsServable || !holdForWebSockets
      ? 0
      : Math.min(Date.now() + MAX_HOLD_MS, generation.earliestExpiry() - EXPIRY_MARGIN_MS);
    retiring.add(generation);
    const heldSince = Date.now();
    await generation.retire(deadline, () => {
      // Reported as the shutdown begins: that is when its idle connections and WebSockets close.
      options.onRetired?.({
        addr: previous.addr,
        heldMs: Date.now() - heldSince,
        webSockets: generation.upgrades,
      });
      return previous.server.shutdown();
    });
    retiring.delete(generation);
  };
  const replace = (next: ReturnType<typeof start>, holdForWebSockets: boolean) => {
    const previous = current;
    current = next;
    const done = retire(previous, holdForWebSockets).catch(() => {});
    draining.add(done);
    done.finally(() => draining.delete(done));
  };
  const refresh = () => {
    if (stopped) return;
    // Deno caches the SNI resolver's answer per server name for the listener's lifetime (failures too),
    // so a new certificate reaches new handshakes only through a new listener. The new one is bound
    // first (SO_REUSEPORT), then the old one retires.
    replace(start(hostname, current.addr.port), true);
    warm();
  };
  return {
    get addr() {
      return current.addr;
    },
    refresh,
    async refreshIfStale({ urgentWithinMs, anyStale }) {
      const now = Date.now();
      let stale = false;
      let urgent = false;
      for (const [name, cached] of current.generation.answers) {
        const fresh = await options.resolveCertificate(name).catch(() => undefined);
        if (fresh === undefined || fresh.cert === cached?.cert) continue;
        stale = true;
        if (cached === null || cached.notAfterMs - now < urgentWithinMs) urgent = true;
        if (urgent) break;
      }
      if (!urgent && !(anyStale && stale)) return false;
      refresh();
      return true;
    },
    moveTo(nextHostname: string, port: number) {
      if (stopped) return;
      // Bound before the old one closes: a failure (address in use) leaves the old listener serving.
      if (nextHostname !== hostname || port !== current.addr.port) ensureAddressFree(nextHostname, port);
      replace(start(nextHostname, port), false);
      hostname = nextHostname;
      warm();
    },
    shutdown(graceMs: number): Promise<void> {
      stopped ??= (async () => {
        // The process is stopping: listeners kept for their WebSockets go now too, and every listener first
        // finishes reading the request bodies in flight (its shutdown would cut them), within the grace.
        for (const generation of retiring) generation.expire();
        const last = current;
        const closing = last.generation.retire(Date.now(), () => last.server.shutdown());
        let timer: Timer | undefined;
        const grace = new Promise<void>((resolve) => timer = startTimer(resolve, graceMs));
        await Promise.race([Promise.all([closing, ...draining]), grace]);
        stopTimer(timer);
      })();
      return stopped;
    },
  };
}
