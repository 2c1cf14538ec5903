// The listeners a serving nexo binds for its config: HTTPS (TLS with the certificate store's SNI answers, in
// lib/server/listen.ts) and the optional plain-HTTP one (redirects and HTTP-01 answers), their re-binding
// when a reload moves an address, and the start-up line about listener handover. lib/server/run.ts owns one.

import type { Config, ListenAddress } from "../config/types.ts";
import { errorMessage } from "../error_message.ts";
import type { Http01Tokens } from "../http01_tokens.ts";
import { formatAddr } from "../ip_address.ts";
import type { Logger } from "../log.ts";
import { ResponseBodyCutError } from "../proxy/body.ts";
import { errorPage } from "../proxy/error_page.ts";
import type { CertStore } from "../tls/cert_store.ts";
import type { ServingSnapshot } from "./handler.ts";
import { serveHttpRedirect } from "./http_redirect.ts";
import { enableListenerHandover, type Handler, MIGRATE_REQ, serveTls, type TlsServer } from "./listen.ts";

export interface ListenersOptions {
  /** The config nexo starts with: its listen and http_listen addresses. */
  config: Config;
  /** The config in force (after reloads): the route hosts to warm, the public HTTPS port. */
  current: () => Config;
  snapshot: () => ServingSnapshot;
  store: CertStore;
  handler: Handler;
  http01: Http01Tokens;
  log: Logger;
}

export class Listeners {
  readonly https: TlsServer;
  #http: Deno.HttpServer<Deno.NetAddr> | null;
  readonly #options: ListenersOptions;

  private constructor(options: ListenersOptions) {
    this.#options = options;
    const { config, log, store } = options;
    this.https = listenOrExplain("listen", config.listen, () =>
      serveTls({
        hostname: config.listen.hostname || "0.0.0.0",
        port: config.listen.port,
        resolveCertificate: (name) => store.resolve(name),
        // Exact route hosts that have a certificate already: warming never mints one (the local CA issues on
        // a client's first handshake) and a wildcard's names are only known when clients send them.
        warmNames: () =>
          options.current().routes.map((route) => route.host).filter((host) =>
            !host.startsWith("*.") && store.covers(host)
          ),
        handler: options.handler,
        onRetired: ({ addr, heldMs, webSockets }) =>
          log.info("listener retired", {
            addr: formatAddr(addr),
            held_ms: heldMs >= 1000 ? heldMs : undefined,
            websockets_closed: webSockets || undefined,
          }),
        onError: (error) => {
          // Deno also reports a streamed response body cut short by its upstream here, after the response
          // began: no handler failed, and the access log already has it.
          if (error instanceof ResponseBodyCutError) return errorPage(502, "The response was cut short.");
          log.error("handler failed", {
            error: error instanceof Error ? error.stack ?? error.message : String(error),
          });
          return errorPage(500, "The server hit an internal error.");
        },
      }));
    log.info("listening", {
      addr: formatAddr(this.https.addr),
      protocol: "https",
      routes: config.routes.length,
    });
    this.#http = config.httpListen ? this.#startHttp(config.httpListen) : null;
  }

  /**
   * Binds the HTTPS listener and, with `http_listen`, the HTTP one, after logging whether listener handover
   * is on. Throws with a clear message when an address cannot be bound.
   */
  static async start(options: ListenersOptions): Promise<Listeners> {
    await logListenerHandover(options.log);
    return new Listeners(options);
  }

  get http(): Deno.HttpServer<Deno.NetAddr> | null {
    return this.#http;
  }

  /**
   * Moves the listeners from `current`'s addresses to `next`'s (a reload): each new one is bound before the
   * old one closes. Returns the keys it could not apply ("listen", "httpListen"), whose old listener serves on.
   */
  move(current: Config, next: Config): string[] {
    const { log } = this.#options;
    const failed: string[] = [];
    if (!sameAddress(current.listen, next.listen)) {
      try {
        listenOrExplain(
          "listen",
          next.listen,
          () => this.https.moveTo(next.listen.hostname || "0.0.0.0", next.listen.port),
        );
        log.info("listening", { addr: formatAddr(this.https.addr), protocol: "https", moved: true });
      } catch (error) {
        log.error("listen not changed", { error: errorMessage(error) });
        failed.push("listen");
      }
    }
    if (!sameAddress(current.httpListen, next.httpListen)) {
      try {
        const replacement = next.httpListen ? this.#startHttp(next.httpListen) : null;
        void this.#http?.shutdown();
        this.#http = replacement;
      } catch (error) {
        log.error("http_listen not changed", { error: errorMessage(error) });
        failed.push("httpListen");
      }
    }
    return failed;
  }

  /** Stops accepting on both; in-flight HTTPS requests get up to `graceMs`. */
  async shutdown(graceMs: number): Promise<void> {
    await Promise.all([this.https.shutdown(graceMs), this.#http?.shutdown()]);
  }

  #startHttp(listen: ListenAddress): Deno.HttpServer<Deno.NetAddr> {
    const { current, snapshot, log, http01 } = this.#options;
    const server = listenOrExplain("http_listen", listen, () =>
      serveHttpRedirect({
        hostname: listen.hostname || "0.0.0.0",
        port: listen.port,
        // The port clients use, not the bound one (Docker maps 443 to 8443); read per request for reloads.
        httpsPort: () => current().publicHttpsPort,
        snapshot,
        log,
        http01,
      }));
    log.info("listening", { addr: formatAddr(server.addr), protocol: "http" });
    return server;
  }
}

/** Runs `listen`; an address in use or a port that needs root becomes an error that says what to do. */
export function listenOrExplain<T>(key: string, addr: ListenAddress, listen: () => T): T {
  try {
    return listen();
  } catch (error) {
    const where = `${addr.hostname || "*"}:${addr.port}`;
    if (error instanceof Deno.errors.AddrInUse) {
      throw new Error(
        `Cannot listen on ${where} (${key}): the address is already in use; stop the other ` +
          `server or choose another ${key}`,
        { cause: error },
      );
    }
    if (error instanceof Deno.errors.PermissionDenied) {
      throw new Error(
        `Cannot listen on ${where} (${key}): permission denied; ports below 1024 need root or ` +
          `CAP_NET_BIND_SERVICE, or choose a port above 1024`,
        { cause: error },
      );
    }
    throw error;
  }
}

function sameAddress(a: ListenAddress | null, b: ListenAddress | null): boolean {
  return a?.hostname === b?.hostname && a?.port === b?.port;
}

/** Turns listener handover on where it can (lib/server/listen.ts) and says in the log what it found. */
async function logListenerHandover(log: Logger): Promise<void> {
  const handover = await enableListenerHandover();
  if (handover === "enabled") {
    log.info("listener handover enabled", {
      sysctl: "net.ipv4.tcp_migrate_req=1",
      why: "certificate swaps drop no connection",
    });
  } else if (handover === "not permitted") {
    log.info("listener handover unavailable", {
      fix:
        "sysctl -w net.ipv4.tcp_migrate_req=1 (else a certificate swap may reset a connection being accepted)",
    });
  } else if (handover === "not readable") {
    // Deno 2.9.6 lets a process read /proc/sys only with --allow-all: under nexo's narrow flags whether it
    // is on is unknown, so no claim that it is off.
    log.info("listener handover not checked", {
      file: MIGRATE_REQ,
      fix:
        "make sure `sysctl net.ipv4.tcp_migrate_req` says 1 (else a certificate swap may reset a connection " +
        "being accepted); nexo cannot read it without --allow-all",
    });
  }
}
