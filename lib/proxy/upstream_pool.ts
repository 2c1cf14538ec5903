// Idle keep-alive connections per origin: most recently used first, a cap per origin, expiry after an idle
// timeout by one unref'd timer per pool, and eviction as soon as an upstream closes an idle connection.
// Which connections are clean enough to keep is decided before `put()` (upstream_exchange.ts).

import { startTimer, stopTimer, type Timer, unrefTimer } from "../timers.ts";

/** What the idle set needs from a connection (UpstreamConnection; tests pass fakes). */
export interface ParkableConnection {
  /** Stops keeping the process alive and calls `onGone` if the peer closes or sends while idle. */
  park(onGone: () => void): void;
  /** Back in use: keeps the process alive again. */
  resume(): void;
  close(): void;
}

/** Limits of an idle set. */
export interface IdleConnectionsOptions {
  /** Idle connections kept per origin; the oldest is closed past it. 0 disables keep-alive. */
  maxPerOrigin: number;
  /** Milliseconds an idle connection is kept before it is closed. */
  idleTimeoutMs: number;
}

interface IdleEntry<C> {
  conn: C;
  /** performance.now() when parked, ms. */
  since: number;
}

/**
 * Idle connections keyed by origin. `take()` returns the most recently parked one (the likeliest to still be
 * open). Never keeps the process alive: parked connections are unref'd and the expiry timer too. Not safe to
 * use after `closeAll()` except for `put()`, which then closes what it is given.
 */
export class IdleConnections<C extends ParkableConnection> {
  #byOrigin = new Map<string, IdleEntry<C>[]>();
  #size = 0;
  #timer: Timer | undefined = undefined;
  #closed = false;
  #options: IdleConnectionsOptions;

  constructor(options: IdleConnectionsOptions) {
    this.#options = options;
  }

  /** Number of idle connections across all origins. */
  get size(): number {
    return this.#size;
  }

  /** An idle connection to `key`, resumed, or null when none is left. */
  take(key: string): C | null {
    const list = this.#byOrigin.get(key);
    const entry = list?.pop();
    if (list === undefined || entry === undefined) return null;
    if (list.length === 0) this.#byOrigin.delete(key);
    this.#size--;
    entry.conn.resume();
    return entry.conn;
  }

  /** Parks `conn` as idle for `key`; closes it instead when keep-alive is off or the set was closed. */
  put(key: string, conn: C): void {
    if (this.#closed || this.#options.maxPerOrigin <= 0) return conn.close();
    let list = this.#byOrigin.get(key);
    if (list === undefined) this.#byOrigin.set(key, list = []);
    list.push({ conn, since: performance.now() });
    this.#size++;
    conn.park(() => this.#evict(key, conn));
    if (list.length > this.#options.maxPerOrigin) {
      list.shift()!.conn.close();
      this.#size--;
    }
    this.#schedule();
  }

  /** Closes every idle connection and stops the timer. Idempotent. */
  closeAll(): void {
    this.#closed = true;
    stopTimer(this.#timer);
    this.#timer = undefined;
    for (const list of this.#byOrigin.values()) {
      for (const entry of list) entry.conn.close();
    }
    this.#byOrigin.clear();
    this.#size = 0;
  }

  #evict(key: string, conn: C): void {
    const list = this.#byOrigin.get(key);
    const index = list?.findIndex((entry) => entry.conn === conn) ?? -1;
    if (list === undefined || index === -1) return;
    list.splice(index, 1);
    if (list.length === 0) this.#byOrigin.delete(key);
    this.#size--;
    conn.close();
  }

  /** One timer for the whole set, due when the oldest idle connection expires. */
  #schedule(): void {
    if (this.#timer !== undefined || this.#size === 0) return;
    let oldest = Infinity;
    for (const list of this.#byOrigin.values()) oldest = Math.min(oldest, list[0]?.since ?? Infinity);
    const delay = Math.max(0, oldest + this.#options.idleTimeoutMs - performance.now());
    const timer = startTimer(() => {
      this.#timer = undefined;
      this.#sweep();
      this.#schedule();
    }, Math.min(delay, 2 ** 31 - 1));
    unrefTimer(timer);
    this.#timer = timer;
  }

  #sweep(): void {
    const cutoff = performance.now() - this.#options.idleTimeoutMs;
    for (const [key, list] of this.#byOrigin) {
      while (list.length > 0 && list[0]!.since <= cutoff) {
        list.shift()!.conn.close();
        this.#size--;
      }
      if (list.length === 0) this.#byOrigin.delete(key);
    }
  }
}
