// The main thread's side of a shared store (`storage:`): loads the cluster's certificates into the CertStore,
// installs those other instances obtain (a pub/sub message; polling a generation counter as the fallback),
// tells the others what this one stored, shares HTTP-01 responses, and tracks whether Redis answers, for
// /status and the log. Issuing stays with the ACME supervisor; reading and writing with CertRepository.

import { errorMessage } from "../error_message.ts";
import type { StorageConfig } from "../config/types.ts";
import type { Logger } from "../log.ts";
import type { Http01Tokens } from "../http01_tokens.ts";
import type { CertRepository } from "../storage/cert_repository.ts";
import type { StoredCertificate } from "../storage/cert_meta.ts";
import { parseRedisUrl } from "../storage/redis_url.ts";
import { RespSubscriber } from "../storage/resp_subscriber.ts";
import {
  openSharedStore,
  readSharedStoreSettings,
  type SharedStore,
  type SharedStoreSettings,
} from "../storage/shared_store.ts";
import type { CertStore } from "../tls/cert_store.ts";
import { SharedHttp01Tokens } from "./shared_tokens.ts";
import { startInterval, stopTimer, type Timer, unrefTimer } from "../timers.ts";
import { isoTime } from "../iso_time.ts";

/**
 * Another instance's certificate is served within a second through pub/sub; the generation counter is read
 * every 10 s in case a message was missed (a subscriber reconnecting, a proxy without pub/sub). Reconnects
 * back off from 1 s to 30 s; a quiet subscriber connection is pinged every 30 s so a vanished Redis host is
 * noticed.
 */
const POLL_MS = 10_000;
const SUBSCRIBER = {
  pingIntervalMs: 30_000,
  connectTimeoutMs: 5_000,
  backoff: { firstMs: 1_000, maxMs: 30_000 },
};

export interface SharedStateOptions {
  store: CertStore;
  log: Logger;
  /** Called after certificates were put into the store (the TLS listener must pick them up). */
  onInstalled: () => void;
  /** Called when Redis answers again after an outage (issuance that waited can resume). */
  onReachable: () => void;
}

/** What /status shows of the shared store. */
export interface SharedStateStatus {
  backend: "redis";
  address: string;
  prefix: string;
  reachable: boolean;
  /** When the current state began (ISO 8601). */
  since: string;
  /** The last error while unreachable; null when reachable. Never holds the password. */
  error: string | null;
  /** When the cluster's certificates were last read (ISO 8601), or null before the first read. */
  synced_at: string | null;
}

/** The shared store as the main thread uses it. `open()`, then `start()` once serving has begun. */
export class SharedState {
  readonly repository: CertRepository;
  readonly http01: Http01Tokens;
  readonly #shared: SharedStore;
  readonly #prefix: string;
  readonly #address: string;
  readonly #options: SharedStateOptions;
  readonly #subscriber: RespSubscriber;
  #poller: Timer | undefined;
  #generation: string | null = null;
  #reachable = true;
  #since = new Date();
  #error: string | null = null;
  #syncedAt: Date | null = null;
  #syncing: Promise<void> | null = null;
  #syncAgain = false;

  private constructor(shared: SharedStore, settings: SharedStoreSettings, options: SharedStateOptions) {
    this.#shared = shared;
    this.#prefix = settings.prefix;
    this.#address = shared.client.label;
    this.#options = options;
    this.repository = shared.repository;
    this.http01 = new SharedHttp01Tokens(shared.client, settings.prefix);
    this.#subscriber = new RespSubscriber({
      address: parseRedisUrl(settings.url),
      password: settings.password,
      ...(settings.caCertsPem.length > 0 ? { caCerts: settings.caCertsPem } : {}),
      channel: this.#channel,
      ...SUBSCRIBER,
      onMessage: () => void this.sync(),
      onConnected: () => {
        this.#markReachable();
        void this.sync();
      },
      onDisconnected: (error) => this.#markUnreachable(error),
    });
  }

  /** Opens the store `config` names (its files read now); nothing connects until `sync()` or `start()`. */
  static async open(config: StorageConfig, options: SharedStateOptions): Promise<SharedState> {
    const settings = await readSharedStoreSettings(config);
    const shared = await openSharedStore(settings);
    return new SharedState(shared, settings, options);
  }

  /** Subscribes to the other instances' news and starts the fallback polling. */
  start(): void {
    this.#subscriber.start();
    this.#poller = startInterval(() => void this.#poll(), POLL_MS);
    unrefTimer(this.#poller);
  }

  /**
   * Reads every certificate in the store and installs each one newer than what the CertStore serves for its
   * names. Never rejects: an unreachable Redis is logged once (and shown in /status) and serving goes on
   * with what is in memory. Overlapping calls run one read after another.
   */
  sync(): Promise<void> {
    if (this.#syncing !== null) {
      this.#syncAgain = true;
      return this.#syncing;
    }
    this.#syncing = (async () => {
      do {
        this.#syncAgain = false;
        await this.#syncOnce();
      } while (this.#syncAgain);
    })().finally(() => this.#syncing = null);
    return this.#syncing;
  }

  /** Tells the other instances that this one stored the certificate for `names`. Never rejects. */
  async announce(names: string[]): Promise<void> {
    try {
      // Not remembered as seen: another instance's increment just before this one would then be missed by the
      // fallback poll. This instance reads its own certificate once more instead.
      await this.#shared.client.command(["INCR", this.#generationKey]);
      await this.#shared.client.command(["PUBLISH", this.#channel, names.join(",")]);
    } catch (error) {
      // The others find it at their next poll once Redis answers.
      this.#options.log.warn("certificate not announced", {
        names: names.join(","),
        error: errorMessage(error),
      });
    }
  }

  status(): SharedStateStatus {
    return {
      backend: "redis",
      address: this.#address,
      prefix: this.#prefix,
      reachable: this.#reachable,
      since: isoTime(this.#since),
      error: this.#error,
      synced_at: this.#syncedAt ? isoTime(this.#syncedAt) : null,
    };
  }

  /** Stops polling and the subscriber, and closes the connection. */
  async close(): Promise<void> {
    stopTimer(this.#poller);
    await this.#subscriber.close();
    await this.#syncing;
    this.#shared.close();
  }

  get #channel(): string {
    return `${this.#prefix}:events`;
  }

  get #generationKey(): string {
    return `${this.#prefix}:generation`;
  }

  async #poll(): Promise<void> {
    try {
      const reply = await this.#shared.client.command(["GET", this.#generationKey]);
      this.#markReachable();
      const generation = reply instanceof Uint8Array ? new TextDecoder().decode(reply) : null;
      if (generation !== this.#generation) await this.sync();
    } catch (error) {
      this.#markUnreachable(error);
    }
  }

  async #syncOnce(): Promise<void> {
    const { store, log } = this.#options;
    try {
      const generation = await this.#shared.client.command(["GET", this.#generationKey]);
      const { certificates, problems } = await this.repository.loadCertificates();
      this.#generation = generation instanceof Uint8Array ? new TextDecoder().decode(generation) : null;
      this.#syncedAt = new Date();
      this.#markReachable();
      for (const problem of problems) log.warn("certificate storage problem", { error: problem });
      const installed = installNewer(store, certificates, Date.now());
      for (const cert of installed) {
        log.info("certificate installed", {
          names: cert.names.join(","),
          not_after: isoTime(cert.notAfter!),
          from: "shared storage",
        });
      }
      if (installed.length > 0) this.#options.onInstalled();
    } catch (error) {
      this.#markUnreachable(error);
    }
  }

  #markReachable(): void {
    if (this.#reachable) return;
    this.#reachable = true;
    this.#since = new Date();
    this.#error = null;
    this.#options.log.info("shared storage reachable", { address: this.#address });
    this.#options.onReachable();
  }

  #markUnreachable(error: unknown): void {
    this.#error = errorMessage(error);
    if (!this.#reachable) return;
    this.#reachable = false;
    this.#since = new Date();
    this.#options.log.error("shared storage unreachable", {
      address: this.#address,
      error: this.#error,
      note: "serving goes on with the certificates in memory; issuance and renewal wait for it",
    });
  }
}

/**
 * Puts into `store` each stored certificate with a usable pair, unexpired at `now`, that expires later than
 * what `store` serves for its first name (or that it does not serve at all); returns those put. Earliest
 * expiry first, so that a name claimed twice ends with the later-expiring certificate, as loadCertDir does.
 */
export function installNewer(
  store: CertStore,
  certificates: StoredCertificate[],
  now: number,
): StoredCertificate[] {
  const usable = certificates
    .filter((cert) => cert.pair !== null && cert.notAfter !== null && cert.notAfter.getTime() > now)
    .sort((a, b) => a.notAfter!.getTime() - b.notAfter!.getTime());
  const installed: StoredCertificate[] = [];
  for (const cert of usable) {
    const served = store.lookup(cert.names[0]!);
    if (served !== undefined && served.notAfter.getTime() >= cert.notAfter!.getTime()) continue;
    store.set({
      certPem: cert.pair!.certPem,
      keyPem: cert.pair!.keyPem,
      names: cert.names,
      notAfter: cert.notAfter!,
      source: cert.managed ? "acme" : "file",
    });
    installed.push(cert);
  }
  return installed;
}
