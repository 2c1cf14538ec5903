// The deadline and abort wiring of one upstream request, across its connect, a retry and the exchange: the
// caller's AbortSignal, the response timeout and the response body's idle timeout all end in `abort(reason)`,
// which closes the connection in use and cancels the request body. No I/O of its own; what happens on the
// wire is upstream_exchange.ts's.

import { cancelDeadline, type Deadline, startDeadline } from "../deadlines.ts";
import { UpstreamError } from "./upstream_error.ts";

/** What the head deadline is currently guarding: opening the connection, or waiting for the response head. */
export type WatchPhase = "connect" | "response";

/** What `RequestControl` needs from the connection it closes on abort. */
export interface Closable {
  close(): void;
}

/** Settings for one request's control. */
export interface RequestControlOptions {
  /** The caller's signal; its abort reason becomes the request's error. */
  signal: AbortSignal | undefined;
  /** No-progress limit in ms for connecting and for the response head; not finite or >= 2^31 means none. */
  timeoutMs: number;
  /** Limit in ms on each wait for response body bytes; not finite or >= 2^31 means none. */
  bodyTimeoutMs: number;
  /** "host:port" of the upstream, for the timeout message. */
  authority: string;
}

/**
 * One request's abort state. `abort()` wins once and is ignored after `finish()` (the connection may be back in
 * the pool by then). Every timer it starts is cleared by `abort()` or `finish()` (the head deadline also by
 * `headReceived()`), so nothing outlives the request.
 */
export class RequestControl {
  #aborted = false;
  #finished = false;
  #headReceived = false;
  #reason: unknown = undefined;
  #conn: Closable | null = null;
  #body: ReadableStreamGenericReader | null = null;
  #timer: Deadline | undefined = undefined;
  #bodyTimer: Deadline | undefined = undefined;
  #connect = new AbortController();
  #signal: AbortSignal | undefined;
  #timeoutMs: number;
  #bodyTimeoutMs: number;
  #authority: string;
  #onAbort = () => this.abort(this.#signal?.reason);

  /** Throws the signal's reason right away when it is already aborted. */
  constructor(options: RequestControlOptions) {
    options.signal?.throwIfAborted();
    this.#signal = options.signal;
    this.#timeoutMs = options.timeoutMs;
    this.#bodyTimeoutMs = options.bodyTimeoutMs;
    this.#authority = options.authority;
    this.#signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  /** Aborts a connect in progress (with the same reason as the request). */
  get connectSignal(): AbortSignal {
    return this.#connect.signal;
  }

  get aborted(): boolean {
    return this.#aborted;
  }

  get finished(): boolean {
    return this.#finished;
  }

  /** The abort reason: the caller's signal reason or an UpstreamError "timeout"; undefined until aborted. */
  get reason(): unknown {
    return this.#reason;
  }

  /**
   * The connection to close on abort (replaces the previous one after a retry). Closed at once when the
   * request was aborted already (e.g. just as the connect completed), so it cannot leak.
   */
  attach(conn: Closable): void {
    this.#conn = conn;
    if (this.#aborted) conn.close();
  }

  /** The request body reader to cancel on abort; cancelled at once when the request was aborted already. */
  attachBody(reader: ReadableStreamGenericReader): void {
    this.#body = reader;
    if (this.#aborted) this.cancelBody(this.#reason);
  }

  /** (Re)starts the deadline for `phase`; a no-op once the response head arrived or the request ended. */
  watch(phase: WatchPhase): void {
    if (this.#aborted || this.#finished || this.#headReceived) return;
    this.unwatch();
    this.#timer = startDeadline(this.#timeoutMs, () => this.abort(this.#timeoutError(phase)));
  }

  /** Pauses the deadline (while waiting on the client's body, which is not the upstream's fault). */
  unwatch(): void {
    cancelDeadline(this.#timer);
    this.#timer = undefined;
  }

  /** The response timeout does not limit the body: stop its deadline for good (body reads use watchBody). */
  headReceived(): void {
    this.#headReceived = true;
    this.unwatch();
  }

  /**
   * Starts the body deadline for one wait on the upstream for response body bytes; `unwatchBody()` when they
   * came. Separate from the head deadline, which the request body's sender pauses and resumes on its own.
   */
  watchBody(): void {
    if (this.#aborted || this.#finished) return;
    this.unwatchBody();
    this.#bodyTimer = startDeadline(this.#bodyTimeoutMs, () => this.abort(this.#bodyTimeoutError()));
  }

  /** Stops the body deadline (the bytes came, or the read failed). */
  unwatchBody(): void {
    cancelDeadline(this.#bodyTimer);
    this.#bodyTimer = undefined;
  }

  /** Cancels the request body (once), e.g. when the upstream stopped reading it. */
  cancelBody(reason: unknown): void {
    const body = this.#body;
    this.#body = null;
    body?.cancel(reason).catch(() => {});
  }

  /** Ends the request with `reason`: closes the connection, cancels connect and body. First call wins. */
  abort(reason: unknown): void {
    if (this.#aborted || this.#finished) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#cleanUp();
    this.#connect.abort(reason);
    this.#conn?.close();
    this.cancelBody(reason);
  }

  /** The request is over (response complete, failed, or handed to the pool): later aborts are ignored. */
  finish(): void {
    this.#finished = true;
    this.#cleanUp();
  }

  #cleanUp(): void {
    this.unwatch();
    this.unwatchBody();
    this.#signal?.removeEventListener("abort", this.#onAbort);
  }

  #timeoutError(phase: WatchPhase): UpstreamError {
    const message = phase === "connect"
      ? `cannot connect to upstream ${this.#authority} within ${this.#timeoutMs} ms`
      : `upstream ${this.#authority} sent no response head within ${this.#timeoutMs} ms`;
    return new UpstreamError("timeout", message);
  }

  #bodyTimeoutError(): UpstreamError {
    return new UpstreamError(
      "timeout",
      `upstream ${this.#authority} sent no response body bytes for ${this.#bodyTimeoutMs} ms; body cut off`,
    );
  }
}
