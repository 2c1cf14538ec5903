// One TLS listener's life as listen.ts replaces listeners: what its SNI cache holds (Deno 2.9.6 keeps every
// answer, failures included, for the listener's life), the WebSockets and request bodies still open on it, and
// its retirement: shut down at once, or held while they live and its cached certificates stay valid. It binds nothing
// and serves nothing itself; listen.ts owns the sockets.

import { startTimer, stopTimer, type Timer, unrefTimer } from "../timers.ts";

/** What a listener's cache holds for one server name: the certificate served, or null (a failed lookup). */
export type CachedAnswer = { cert: string; notAfterMs: number } | null;

/**
 * Longest a replaced listener is kept for its WebSockets. Deno's graceful shutdown of a listener's server
 * closes every WebSocket it upgraded (measured: the client gets 1001), so a replaced listener lives on while
 * any is open. Meanwhile it still takes a share of new connections (SO_REUSEPORT), handing out what its cache
 * holds: still-valid certificates, one renewal behind. A day bounds that, and the memory of piled-up listeners.
 */
export const MAX_HOLD_MS = 24 * 3_600_000;
/**
 * A held listener is shut down this long before the first certificate in its cache expires, so it never
 * hands out an expired one. Renewals happen a third of a lifetime early, so only a certificate that could
 * not be renewed (or a test's 30-second one) comes this close.
 */
export const EXPIRY_MARGIN_MS = 10_000;

/**
 * How long past its deadline a retiring listener waits for request bodies still being read. Its shutdown
 * cuts them (Deno 2.9.6: the client gets a 400 mid-upload), and meanwhile SO_REUSEPORT still hands it new
 * connections, so the wait ends when the last body is done or after this long, whichever is first. It equals
 * EXPIRY_MARGIN_MS, so the certificates in its cache stay valid through it.
 */
export const REQUEST_GRACE_MS = EXPIRY_MARGIN_MS;

/** What keeps a retiring listener up: an upgraded connection (a WebSocket) or a request body being read. */
export type HoldKind = "upgrade" | "request";

export class ListenerGeneration {
  /** Every answer Deno's cache holds for this listener, by server name as the client sent it. */
  readonly answers = new Map<string, CachedAnswer>();
  readonly #requestGraceMs: number;
  #holds = { upgrade: 0, request: 0 };
  #retired:
    | { shutdown: () => Promise<void>; timer: Timer; pastDeadline: boolean }
    | null = null;
  #done: Promise<void> | null = null;

  constructor(options: { requestGraceMs?: number } = {}) {
    this.#requestGraceMs = options.requestGraceMs ?? REQUEST_GRACE_MS;
  }

  /** Records the resolver's answer for `serverName` (undefined or a rejection: a cached failure). */
  record(serverName: string, answer: { cert: string; notAfterMs?: number } | undefined): void {
    this.answers.set(
      serverName,
      answer === undefined ? null : { cert: answer.cert, notAfterMs: answer.notAfterMs ?? Infinity },
    );
  }

  /** WebSockets (or other upgraded connections) open on this listener: its shutdown closes them. */
  get upgrades(): number {
    return this.#holds.upgrade;
  }

  /** Request bodies this listener is still reading: its shutdown cuts them. */
  get requests(): number {
    return this.#holds.request;
  }

  /**
   * Keeps a retiring listener serving until the returned release is called (once; later calls do nothing).
   * An upgrade holds it until the retirement's deadline, a request up to REQUEST_GRACE_MS past it.
   */
  hold(kind: HoldKind): () => void {
    this.#holds[kind]++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#holds[kind]--;
      const retired = this.#retired;
      if (retired === null) return;
      if (this.#holds.request === 0 && (retired.pastDeadline || this.#holds.upgrade === 0)) this.#finish();
    };
  }

  /** The earliest expiry among cached certificates, ms since the epoch (Infinity when none). */
  earliestExpiry(): number {
    let earliest = Infinity;
    for (const answer of this.answers.values()) {
      if (answer !== null && answer.notAfterMs < earliest) earliest = answer.notAfterMs;
    }
    return earliest;
  }

  /**
   * Shuts this listener down through `shutdown`: at once when nothing holds it, else when the last hold is
   * released or at `deadlineMs` (ms since the epoch), whichever is first; request bodies still being read
   * then get up to REQUEST_GRACE_MS more. Resolves when shut down. Idempotent: a second call returns the
   * first one's promise.
   */
  retire(deadlineMs: number, shutdown: () => Promise<void>): Promise<void> {
    if (this.#done) return this.#done;
    let resolve!: () => void;
    this.#done = new Promise((r) => resolve = r);
    const retired = {
      shutdown: () => shutdown().catch(() => {}).finally(resolve),
      timer: this.#after(deadlineMs - Date.now(), () => this.#deadline()),
      pastDeadline: false,
    };
    this.#retired = retired;
    if (this.#holds.upgrade + this.#holds.request === 0) this.#finish();
    return this.#done;
  }

  /**
   * Brings a retiring listener's deadline forward to now (the process is stopping): its WebSockets no longer
   * keep it up, request bodies still being read get the grace.
   */
  expire(): void {
    if (this.#retired && !this.#retired.pastDeadline) this.#deadline();
  }

  #deadline(): void {
    const retired = this.#retired;
    if (retired === null) return;
    if (this.#holds.request === 0) return this.#finish();
    stopTimer(retired.timer);
    retired.pastDeadline = true;
    retired.timer = this.#after(this.#requestGraceMs, () => this.#finish());
  }

  #after(ms: number, run: () => void): Timer {
    const timer = startTimer(run, Math.max(0, Math.min(ms, 2 ** 31 - 1)));
    unrefTimer(timer);
    return timer;
  }

  #finish(): void {
    const retired = this.#retired;
    if (retired === null) return;
    this.#retired = null;
    stopTimer(retired.timer);
    retired.shutdown();
  }
}
