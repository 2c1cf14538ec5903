// A small Redis client speaking RESP2 over Deno.connect or Deno.connectTls: commands in, replies out,
// pipelined in order, binary-safe (the wire format is resp_wire.ts). The npm clients would bring up Deno's
// Node layer (+26 to +49 MiB of RSS, DEVELOPERS.md). It knows no command beyond AUTH and SELECT at connect,
// which it shares with resp_subscriber.ts (openRedisConnection); redis_storage.ts uses it.

import {
  encodeCommand,
  NEED_MORE,
  ReplyReader,
  RespConnectionError,
  type RespReply,
  RespServerError,
} from "./resp_wire.ts";
import { type RedisAddress, redisLabel } from "./redis_url.ts";
import { startTimer, stopTimer, type Timer, unrefTimer } from "../timers.ts";

/** How to open a connection: RespClient's and resp_subscriber.ts's. */
export interface RedisConnectOptions {
  /** A connection attempt taking longer fails, in ms. */
  connectTimeoutMs: number;
  /** Extra CA certificates (PEM) trusted for rediss://. */
  caCerts?: string[];
  /** The password when the URL has none (`storage.redis.password_file`). A secret. */
  password?: string | null;
}

export interface RespClientOptions extends RedisConnectOptions {
  /** A command whose reply takes longer breaks the connection (its replies can no longer be matched), in ms. */
  commandTimeoutMs: number;
}

interface Pending {
  resolve: (reply: RespReply) => void;
  reject: (error: Error) => void;
}

/**
 * One connection to one Redis, opened on first use and again after it broke: a command sent while the server
 * is unreachable rejects with RespConnectionError, and the next one tries again. Commands may overlap; their
 * replies come back in the order sent (RESP pipelining). `close()` ends it for good.
 */
export class RespClient {
  readonly #address: RedisAddress;
  readonly #options: RespClientOptions;
  #connection: Promise<Connection> | null = null;
  #closed = false;

  constructor(address: RedisAddress, options: RespClientOptions) {
    this.#address = address;
    this.#options = options;
  }

  /** "host:port" for messages (never the password). */
  get label(): string {
    return redisLabel(this.#address);
  }

  /**
   * Sends one command and resolves its reply. Rejects with RespServerError for an error reply, with
   * RespConnectionError when Redis cannot be reached or the connection breaks meanwhile.
   */
  async command(args: ReadonlyArray<string | Uint8Array>): Promise<RespReply> {
    if (this.#closed) throw new RespConnectionError(`The connection to ${this.label} was closed`);
    const connection = await this.#connect();
    try {
      return await connection.send(args);
    } catch (error) {
      if (error instanceof RespConnectionError && this.#connection !== null) {
        // Broken: the next command opens a new connection.
        const current = await this.#connection.catch(() => null);
        if (current === connection) this.#connection = null;
      }
      throw error;
    }
  }

  /** Closes the connection; later commands reject. */
  close(): void {
    this.#closed = true;
    this.#connection?.then((connection) => connection.close(), () => {});
    this.#connection = null;
  }

  #connect(): Promise<Connection> {
    this.#connection ??= openRedisConnection(this.#address, {
      ...this.#options,
      loginTimeoutMs: this.#options.commandTimeoutMs,
    }).then(
      (conn) => new Connection(conn, this.label, this.#options.commandTimeoutMs),
      (error) => {
        this.#connection = null;
        throw error;
      },
    );
    return this.#connection;
  }
}

export interface OpenRedisConnectionOptions extends RedisConnectOptions {
  /** Each login reply (AUTH, SELECT) taking longer fails the attempt, in ms. */
  loginTimeoutMs: number;
  /** Aborting it ends an attempt under way (RespConnectionError). */
  signal?: AbortSignal;
}

/**
 * Opens a TCP or TLS connection to `address` and logs in: AUTH with the URL's password or else
 * `options.password`, SELECT of the URL's database. Used by RespClient and RespSubscriber, which then own the
 * connection. Rejects with RespConnectionError when Redis cannot be reached, does not answer in time or
 * refuses the login; its message names the server and never contains the password.
 */
export async function openRedisConnection(
  address: RedisAddress,
  options: OpenRedisConnectionOptions,
): Promise<Deno.Conn> {
  const label = redisLabel(address);
  const timeout = AbortSignal.timeout(options.connectTimeoutMs);
  const signal = options.signal ? AbortSignal.any([timeout, options.signal]) : timeout;
  let conn: Deno.Conn;
  try {
    conn = address.tls
      ? await Deno.connectTls({
        hostname: address.hostname,
        port: address.port,
        ...(options.caCerts ? { caCerts: options.caCerts } : {}),
        signal,
      } as Deno.ConnectTlsOptions)
      : await Deno.connect({ hostname: address.hostname, port: address.port, signal } as Deno.ConnectOptions);
  } catch (error) {
    const why = timeout.aborted
      ? `no answer within ${options.connectTimeoutMs} ms`
      : signal.aborted
      ? "the attempt was given up"
      : (error as Error).message;
    throw new RespConnectionError(`Cannot connect to ${label}: ${why}`, { cause: error });
  }
  const password = address.password ?? options.password ?? null;
  try {
    if (password !== null) {
      const auth = address.username === null ? ["AUTH", password] : ["AUTH", address.username, password];
      await exchange(conn, auth, label, options);
    }
    if (address.db !== 0) await exchange(conn, ["SELECT", String(address.db)], label, options);
  } catch (error) {
    closeQuietly(conn);
    if (error instanceof RespServerError) {
      // "WRONGPASS invalid username-password pair", "NOAUTH ...": the server's words carry no secret.
      throw new RespConnectionError(`${label} refused nexo's login: ${error.message}`, { cause: error });
    }
    throw error;
  }
  return conn;
}

/**
 * Sends one command on a connection nothing else reads yet and reads its one reply. A reply that does not
 * come within `loginTimeoutMs`, or `signal` aborting, closes the connection.
 */
async function exchange(
  conn: Deno.Conn,
  args: string[],
  label: string,
  options: OpenRedisConnectionOptions,
): Promise<RespReply> {
  let why: string | null = null;
  const giveUp = (reason: string) => {
    why ??= reason;
    closeQuietly(conn);
  };
  const timer = startTimer(
    () => giveUp(`${label} did not answer within ${options.loginTimeoutMs} ms`),
    options.loginTimeoutMs,
  );
  unrefTimer(timer);
  const onAbort = () => giveUp(`the connection to ${label} was closed`);
  options.signal?.addEventListener("abort", onAbort);
  const reader = new ReplyReader();
  const buffer = new Uint8Array(4096);
  try {
    await writeAll(conn, encodeCommand(args));
    while (true) {
      const reply = reader.next();
      if (reply instanceof RespServerError) throw reply;
      if (reply !== NEED_MORE) return reply;
      const n = await conn.read(buffer);
      if (n === null) throw new RespConnectionError(`${label} closed the connection`);
      reader.push(buffer.subarray(0, n));
    }
  } catch (error) {
    if (why !== null) throw new RespConnectionError(why, { cause: error });
    if (error instanceof RespServerError || error instanceof RespConnectionError) throw error;
    throw new RespConnectionError(`logging in to ${label} failed: ${(error as Error).message}`, {
      cause: error,
    });
  } finally {
    stopTimer(timer);
    options.signal?.removeEventListener("abort", onAbort);
  }
}

/** One TCP or TLS connection: writes commands, reads replies in order. */
class Connection {
  readonly #conn: Deno.Conn;
  readonly #label: string;
  readonly #timeoutMs: number;
  readonly #pending: Pending[] = [];
  readonly #reader = new ReplyReader();
  #broken: RespConnectionError | null = null;
  #writing: Promise<void> = Promise.resolve();

  constructor(conn: Deno.Conn, label: string, timeoutMs: number) {
    this.#conn = conn;
    this.#label = label;
    this.#timeoutMs = timeoutMs;
    this.#readLoop();
  }

  send(args: ReadonlyArray<string | Uint8Array>): Promise<RespReply> {
    if (this.#broken) return Promise.reject(this.#broken);
    const reply = new Promise<RespReply>((resolve, reject) => this.#pending.push({ resolve, reject }));
    const bytes = encodeCommand(args);
    this.#writing = this.#writing.then(() => writeAll(this.#conn, bytes)).catch((error) =>
      this.#fail(`writing to ${this.#label} failed: ${(error as Error).message}`)
    );
    // A reply that never comes would leave every later one unmatched: the connection is given up.
    let timer: Timer | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = startTimer(() => {
        this.#fail(`${this.#label} did not answer within ${this.#timeoutMs} ms`);
        reject(this.#broken);
      }, this.#timeoutMs);
    });
    return Promise.race([reply, timeout]).finally(() => stopTimer(timer));
  }

  close(): void {
    this.#fail(`the connection to ${this.#label} was closed`);
  }

  async #readLoop(): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    try {
      while (true) {
        const n = await this.#conn.read(buffer);
        if (n === null) return this.#fail(`${this.#label} closed the connection`);
        this.#reader.push(buffer.subarray(0, n));
        let reply = this.#reader.next();
        while (reply !== NEED_MORE) {
          const waiter = this.#pending.shift();
          if (waiter === undefined) return this.#fail(`${this.#label} sent a reply nothing asked for`);
          if (reply instanceof RespServerError) waiter.reject(reply);
          else waiter.resolve(reply);
          reply = this.#reader.next();
        }
      }
    } catch (error) {
      this.#fail(
        error instanceof RespConnectionError
          ? error.message
          : `reading from ${this.#label} failed: ${(error as Error).message}`,
      );
    }
  }

  #fail(reason: string): void {
    if (this.#broken === null) {
      this.#broken = new RespConnectionError(reason);
      closeQuietly(this.#conn);
    }
    for (const waiter of this.#pending.splice(0)) waiter.reject(this.#broken);
  }
}

/** Writes every byte (Deno's write may take fewer). */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
}

/** Closes a connection that may be closed already. */
export function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}
