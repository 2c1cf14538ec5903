// One Redis Pub/Sub subscription kept alive (RESP2 subscribe mode, redis.io/docs/latest/develop/pubsub):
// it SUBSCRIBEs to one channel, hands each message to its owner, PINGs a quiet connection and reconnects
// with backoff, saying when Redis is lost and when it is back. It does not publish (RespClient does), nor
// replay what was missed while disconnected, nor know what a message means: its owner reloads on onConnected.

import { errorMessage } from "../error_message.ts";
import { log as defaultLog, type Logger } from "../log.ts";
import { closeQuietly, openRedisConnection, writeAll } from "./resp_client.ts";
import { type RedisAddress, redisLabel } from "./redis_url.ts";
import {
  encodeCommand,
  NEED_MORE,
  ReplyReader,
  RespConnectionError,
  type RespReply,
  RespServerError,
} from "./resp_wire.ts";
import { startTimer, stopTimer, type Timer, unrefTimer } from "../timers.ts";

export interface RespSubscriberOptions {
  /** From parseRedisUrl. */
  address: RedisAddress;
  /** The password when the URL has none (`storage.redis.password_file`). A secret. */
  password?: string | null;
  /** Extra CA certificates (PEM) trusted for rediss://. */
  caCerts?: string[];
  channel: string;
  /** Connecting, logging in and the SUBSCRIBE confirmation each taking longer fail the attempt, in ms. */
  connectTimeoutMs: number;
  /**
   * A PING is sent when the connection has been quiet this long, in ms; no reply within connectTimeoutMs
   * breaks the connection (a Redis host that vanished without a RST is otherwise never noticed).
   */
  pingIntervalMs: number;
  /** Reconnect backoff: first delay, doubling to max, in ms; back to first once subscribed again. */
  backoff: { firstMs: number; maxMs: number };
  /** Each message's payload (UTF-8). */
  onMessage(payload: string): void;
  /** Subscribed (first time and after each reconnect): messages published meanwhile were missed. */
  onConnected(): void;
  /**
   * The connection failed or broke; called once per outage (not per failed retry), with the error (a
   * RespConnectionError naming the server; its message never contains the password).
   */
  onDisconnected(error: Error): void;
  /** Where a callback that threw is logged; nexo's logger by default. */
  log?: Logger;
}

/**
 * A message or reply bigger than this breaks the connection. Events name a key (tens of bytes); 1 MiB leaves
 * room and bounds what any publisher on a shared Redis can make every nexo buffer (ReplyReader alone allows
 * 512 MiB).
 */
const MAX_REPLY_BYTES = 1024 * 1024;

/**
 * Keeps one subscription to `options.channel`. Callbacks are called one at a time, from the subscriber's own
 * loop; one that throws is logged and the loop carries on. Its timers never keep the process alive.
 */
export class RespSubscriber {
  readonly #options: RespSubscriberOptions;
  readonly #label: string;
  readonly #log: Logger;
  readonly #closing = new AbortController();
  #running: Promise<void> | null = null;
  #subscription: Subscription | null = null;
  #connected = false;
  #inOutage = false;
  #delayMs: number;

  constructor(options: RespSubscriberOptions) {
    this.#options = options;
    this.#label = redisLabel(options.address);
    this.#log = options.log ?? defaultLog;
    this.#delayMs = options.backoff.firstMs;
  }

  /** Connects in the background and retries forever with backoff until close(). Once; later calls do nothing. */
  start(): void {
    if (this.#running !== null || this.#closing.signal.aborted) return;
    this.#running = this.#run();
  }

  /** True from the SUBSCRIBE confirmation until the connection breaks. */
  get connected(): boolean {
    return this.#connected;
  }

  /**
   * Ends the subscription for good: the connection or attempt under way and the backoff timer. Resolves once
   * none is left; no callback is called after it was called.
   */
  async close(): Promise<void> {
    this.#closing.abort();
    this.#subscription?.break(`the subscription to ${this.#label} was closed`);
    await this.#running;
  }

  async #run(): Promise<void> {
    const { firstMs, maxMs } = this.#options.backoff;
    while (!this.#closing.signal.aborted) {
      const error = await this.#subscribeOnce();
      this.#connected = false;
      if (this.#closing.signal.aborted) return;
      if (!this.#inOutage) {
        this.#inOutage = true;
        this.#call("onDisconnected", () => this.#options.onDisconnected(error));
      }
      await this.#sleep(this.#delayMs);
      this.#delayMs = Math.min(Math.max(this.#delayMs * 2, firstMs), maxMs);
    }
  }

  /** One connection, from connecting until it breaks: resolves why it ended, never rejects. */
  async #subscribeOnce(): Promise<Error> {
    const { address, password, caCerts, connectTimeoutMs } = this.#options;
    let conn: Deno.Conn;
    try {
      conn = await openRedisConnection(address, {
        connectTimeoutMs,
        loginTimeoutMs: connectTimeoutMs,
        signal: this.#closing.signal,
        ...(password === undefined ? {} : { password }),
        ...(caCerts === undefined ? {} : { caCerts }),
      });
    } catch (error) {
      return error instanceof Error ? error : new RespConnectionError(String(error));
    }
    if (this.#closing.signal.aborted) {
      closeQuietly(conn);
      return new RespConnectionError(`the subscription to ${this.#label} was closed`);
    }
    this.#subscription = new Subscription(conn, {
      label: this.#label,
      channel: this.#options.channel,
      confirmTimeoutMs: connectTimeoutMs,
      pingIntervalMs: this.#options.pingIntervalMs,
      onSubscribed: () => {
        this.#connected = true;
        this.#inOutage = false;
        this.#delayMs = this.#options.backoff.firstMs;
        this.#call("onConnected", () => this.#options.onConnected());
      },
      onMessage: (payload) => this.#call("onMessage", () => this.#options.onMessage(payload)),
    });
    try {
      return await this.#subscription.run();
    } finally {
      this.#subscription = null;
    }
  }

  /** Waits `ms`, or less when close() is called. */
  #sleep(ms: number): Promise<void> {
    const signal = this.#closing.signal;
    return new Promise((resolve) => {
      if (signal.aborted) return resolve(); // close() from within onDisconnected
      const done = () => {
        stopTimer(timer);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = startTimer(done, ms);
      unrefTimer(timer);
      signal.addEventListener("abort", done);
    });
  }

  #call(callback: string, fn: () => void): void {
    try {
      fn();
    } catch (error) {
      this.#log.error("redis subscriber callback failed", {
        callback,
        channel: this.#options.channel,
        error: errorMessage(error),
      });
    }
  }
}

interface SubscriptionParams {
  label: string;
  channel: string;
  confirmTimeoutMs: number;
  pingIntervalMs: number;
  onSubscribed(): void;
  onMessage(payload: string): void;
}

/** One connection in subscribe mode: sends SUBSCRIBE, reads pushes until it breaks, PINGs it when quiet. */
class Subscription {
  readonly #conn: Deno.Conn;
  readonly #params: SubscriptionParams;
  #subscribed = false;
  #broken: RespConnectionError | null = null;
  #timer: Timer | undefined;
  #writing: Promise<void> = Promise.resolve();

  constructor(conn: Deno.Conn, params: SubscriptionParams) {
    this.#conn = conn;
    this.#params = params;
  }

  /** Subscribes and reads until the connection breaks; resolves why, never rejects. */
  async run(): Promise<RespConnectionError> {
    const { label, channel, confirmTimeoutMs } = this.#params;
    this.#arm(confirmTimeoutMs, () => {
      this.break(`${label} did not confirm SUBSCRIBE ${channel} within ${confirmTimeoutMs} ms`);
    });
    this.#send(["SUBSCRIBE", channel]);
    const reader = new ReplyReader();
    const buffer = new Uint8Array(64 * 1024);
    let unparsedBytes = 0;
    try {
      while (this.#broken === null) {
        const n = await this.#conn.read(buffer);
        if (n === null) {
          this.break(`${label} closed the connection`);
          break;
        }
        if (this.#subscribed) this.#armPing();
        reader.push(buffer.subarray(0, n));
        unparsedBytes += n;
        let reply = reader.next();
        while (reply !== NEED_MORE && this.#broken === null) {
          unparsedBytes = 0;
          this.#handle(reply);
          reply = reader.next();
        }
        if (unparsedBytes > MAX_REPLY_BYTES) {
          this.break(`${label} sent a reply over ${MAX_REPLY_BYTES} bytes on ${channel}`);
        }
      }
    } catch (error) {
      this.break(
        error instanceof RespConnectionError
          ? `${label} sent what is not RESP2: ${error.message}`
          : `reading from ${label} failed: ${errorMessage(error)}`,
      );
    }
    await this.#writing;
    return this.#broken!;
  }

  /** Closes the connection (once; the first reason is kept): run() then resolves. */
  break(reason: string): void {
    if (this.#broken !== null) return;
    this.#broken = new RespConnectionError(reason);
    stopTimer(this.#timer);
    closeQuietly(this.#conn);
  }

  #handle(reply: RespReply | RespServerError): void {
    const { label, channel } = this.#params;
    if (reply instanceof RespServerError) {
      return this.break(`${label} refused SUBSCRIBE ${channel}: ${reply.message}${hintFor(reply.message)}`);
    }
    const kind = Array.isArray(reply) ? textOf(reply[0]) : null;
    if (kind === "subscribe" && !this.#subscribed) {
      this.#subscribed = true;
      this.#armPing();
      return this.#params.onSubscribed();
    }
    if (kind === "message" && Array.isArray(reply) && reply[2] instanceof Uint8Array) {
      if (textOf(reply[1]) === channel) this.#params.onMessage(new TextDecoder().decode(reply[2]));
      return;
    }
    if (kind === "pong") return; // any bytes received already proved the connection alive
    this.break(`${label} sent ${describe(reply)} in subscribe mode, which is not Redis Pub/Sub`);
  }

  /** After pingIntervalMs of quiet a PING; no answer within confirmTimeoutMs breaks the connection. */
  #armPing(): void {
    const { label, pingIntervalMs, confirmTimeoutMs } = this.#params;
    this.#arm(pingIntervalMs, () => {
      this.#send(["PING"]);
      this.#arm(
        confirmTimeoutMs,
        () => this.break(`${label} did not answer PING within ${confirmTimeoutMs} ms`),
      );
    });
  }

  #arm(ms: number, fire: () => void): void {
    stopTimer(this.#timer);
    if (this.#broken !== null) return;
    const timer = startTimer(fire, ms);
    unrefTimer(timer);
    this.#timer = timer;
  }

  #send(args: string[]): void {
    const bytes = encodeCommand(args);
    this.#writing = this.#writing.then(() => writeAll(this.#conn, bytes)).catch((error) =>
      this.break(`writing to ${this.#params.label} failed: ${errorMessage(error)}`)
    );
  }
}

/** What to do about the error replies a subscriber can get. */
function hintFor(message: string): string {
  if (message.startsWith("NOAUTH")) return " (Redis wants a password: put it in the URL or a password file)";
  if (message.startsWith("NOPERM")) return " (grant the Redis ACL user this channel: &<channel>)";
  return "";
}

function textOf(item: RespReply | undefined): string | null {
  if (item instanceof Uint8Array) return new TextDecoder().decode(item);
  return typeof item === "string" ? item : null;
}

function describe(reply: RespReply): string {
  if (Array.isArray(reply)) return `an array starting with ${JSON.stringify(textOf(reply[0]))}`;
  if (reply instanceof Uint8Array) return `a bulk string of ${reply.length} bytes`;
  return `the reply ${JSON.stringify(reply)}`;
}
