// The in-memory hostname -> certificate map the TLS server's SNI resolver reads on every handshake: exact
// name first, then the one-label wildcard, never an expired entry. It does not load, issue, renew or persist
// certificates; loaders (cert_files.ts, the internal issuer, ACME) put entries in and decide what replaces what.

import { coveringWildcard } from "../config/hostname.ts";

/** Where an entry came from, for status output and for callers deciding whether to replace it. */
export type CertSource = "file" | "internal" | "acme";

/** One certificate with its key, as served. */
export interface CertEntry {
  /** Leaf first, then intermediates, PEM. */
  certPem: string;
  /** The leaf's private key, PEM. Never log it. */
  keyPem: string;
  /** The names it is indexed under ("example.com", "*.example.com"); matched case-insensitively. */
  names: string[];
  /** Past this instant the entry is treated as absent. */
  notAfter: Date;
  source: CertSource;
}

/** The shape Deno's TLS APIs take: a PEM chain and its PEM key; and when the entry stops being served (ms). */
export interface TlsKeyPair {
  cert: string;
  key: string;
  notAfterMs: number;
}

/**
 * Called by `CertStore.resolve` when no valid entry covers a server name (already lowercased). Returns the
 * entry to store and serve, or undefined to serve nothing; a rejection fails that handshake only. Calls for
 * different names may overlap; calls for the same name do not. It runs again on the next miss, so a handler
 * that refuses names (not in the config, rate limited) should answer quickly.
 */
export type MissHandler = (serverName: string) => Promise<CertEntry | undefined>;

/** Options for `new CertStore`. */
export interface CertStoreOptions {
  /** Current time in ms since the epoch (a seam for tests); default `Date.now`. */
  now?: () => number;
}

interface Slot {
  entry: CertEntry;
  notAfterMs: number;
  /** Built once at `set` so the hot path hands out the same object instead of allocating per handshake. */
  pair: TlsKeyPair;
}

/**
 * Hostname -> certificate index. `lookup` and `resolve` hits are one or two Map reads; nothing is cached
 * per server name on a miss. Not shared across workers: each holder of a store fills its own.
 */
export class CertStore {
  readonly #slots = new Map<string, Slot>();
  readonly #pending = new Map<string, Promise<TlsKeyPair | undefined>>();
  readonly #now: () => number;
  #onMiss: MissHandler | undefined;

  constructor(options: CertStoreOptions = {}) {
    this.#now = options.now ?? Date.now;
  }

  /**
   * Indexes `entry` under each of its names (lowercased), always replacing whatever was there for those
   * names: the caller decides whether the new entry is better. An older entry still indexed under other
   * names keeps serving them.
   */
  set(entry: CertEntry): void {
    const slot: Slot = {
      entry,
      notAfterMs: entry.notAfter.getTime(),
      pair: { cert: entry.certPem, key: entry.keyPem, notAfterMs: entry.notAfter.getTime() },
    };
    for (const name of entry.names) this.#slots.set(name.toLowerCase(), slot);
  }

  /** Removes the entry indexed under exactly `name` (no wildcard matching); returns whether there was one. */
  delete(name: string): boolean {
    return this.#slots.delete(name.toLowerCase());
  }

  /**
   * The unexpired entry for `serverName`: the exact name, else the wildcard one label up ("a.example.com"
   * -> "*.example.com"; "b.a.example.com" and "example.com" do not match it). Case-insensitive; a single
   * trailing dot is ignored. Returns undefined when nothing valid covers the name.
   */
  lookup(serverName: string): CertEntry | undefined {
    return this.#find(serverName)?.entry;
  }

  /** Whether an unexpired entry covers `host`, by the same rules as `lookup`. */
  covers(host: string): boolean {
    return this.#find(host) !== undefined;
  }

  /** Every indexed name, sorted, including names whose entry has expired (for status output). */
  names(): string[] {
    return [...this.#slots.keys()].sort();
  }

  /** Sets (or with undefined, clears) the handler `resolve` calls on a miss; see `MissHandler`. */
  setMissHandler(handler: MissHandler | undefined): void {
    this.#onMiss = handler;
  }

  /**
   * The SNI resolver: the key pair for `serverName` on a hit; on a miss, the miss handler's entry, stored
   * first via `set`. Concurrent misses for one name share a single handler call. Resolves undefined when
   * there is no handler, the handler returns nothing, or `serverName` is empty (no SNI: the server's default
   * applies). Rejects with the handler's error, caching nothing, so the next handshake tries again.
   */
  resolve(serverName: string): Promise<TlsKeyPair | undefined> {
    const hit = this.#find(serverName);
    if (hit !== undefined) return Promise.resolve(hit.pair);
    const onMiss = this.#onMiss;
    if (onMiss === undefined || serverName === "") return Promise.resolve(undefined);
    const name = normalizeHost(serverName);
    const pending = this.#pending.get(name);
    if (pending !== undefined) return pending;
    const attempt = this.#fill(name, onMiss).finally(() => this.#pending.delete(name));
    this.#pending.set(name, attempt);
    return attempt;
  }

  async #fill(name: string, onMiss: MissHandler): Promise<TlsKeyPair | undefined> {
    const entry = await onMiss(name);
    if (entry === undefined) return undefined;
    this.set(entry);
    return { cert: entry.certPem, key: entry.keyPem, notAfterMs: entry.notAfter.getTime() };
  }

  #find(serverName: string): Slot | undefined {
    const name = normalizeHost(serverName);
    const now = this.#now();
    const exact = this.#slots.get(name);
    if (exact !== undefined && exact.notAfterMs > now) return exact;
    const candidate = coveringWildcard(name);
    if (candidate === null) return undefined;
    const wildcard = this.#slots.get(candidate);
    return wildcard !== undefined && wildcard.notAfterMs > now ? wildcard : undefined;
  }
}

function normalizeHost(host: string): string {
  const lower = host.toLowerCase();
  return lower.endsWith(".") ? lower.slice(0, -1) : lower;
}
