// One TLS listener's life as listen.ts replaces listeners: what its SNI cache holds (Deno 2.9.6 keeps every
// answer, failures included, for the listener's life), the WebSockets still open on it, and its retirement:
// shut down at once, or held while WebSockets live and its cached certificates stay valid. It binds nothing
// and serves nothing itself; listen.ts owns the sockets.

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

export class ListenerGeneration {
  /** Every answer Deno's cache holds for this listener, by server name as the client sent it. */
  readonly answers = new Map<string, CachedAnswer>();
  #holds = 0;
  #retired: { shutdown: () => Promise<void>; timer: ReturnType<typeof setTimeout> } | null = null;
  #done: Promise<void> | null = null;

  /** Records the resolver's answer for `serverName` (undefined or a rejection: a cached failure). */
  record(serverName: string, answer: { cert: string; notAfterMs?: number } | undefined): void {
    this.answers.set(
      serverName,
      answer === undefined ? null : { cert: answer.cert, notAfterMs: answer.notAfterMs ?? Infinity },
    );
  }

  /** WebSockets (or anything else) keeping this listener from a graceful shutdown now. */
  get holds(): number {
    return this.#holds;
  }

  /**
   * Keeps a retiring listener serving until the returned release is called (once; later calls do nothing).
   * For an upgraded connection: its listener's shutdown would close it.
   */
  hold(): () => void {
    this.#holds++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#holds--;
      if (this.#holds === 0 && this.#retired) this.#finish();
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
   * released or at `deadlineMs` (ms since the epoch), whichever is first. Resolves when shut down.
   * Idempotent: a second call returns the first one's promise.
   */
  retire(deadlineMs: number, shutdown: () => Promise<void>): Promise<void> {
    if (this.#done) return this.#done;
    let resolve!: () => void;
    this.#done = new Promise((r) => resolve = r);
    const timer = setTimeout(
      () => this.#finish(),
      Math.max(0, Math.min(deadlineMs - Date.now(), 2 ** 31 - 1)),
    );
    Deno.unrefTimer(timer);
    this.#retired = {
      shutdown: () => shutdown().catch(() => {}).finally(resolve),
      timer,
    };
    if (this.#holds === 0) this.#finish();
    return this.#done;
  }

  /** Shuts a retiring listener down now, holds or not (the process is stopping). */
  finishNow(): void {
    this.#finish();
  }

  #finish(): void {
    const retired = this.#retired;
    if (retired === null) return;
    this.#retired = null;
    clearTimeout(retired.timer);
    retired.shutdown();
  }
}
