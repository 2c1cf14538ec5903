// A small Redis client speaking RESP2 over Deno.connect or Deno.connectTls: commands in, replies out,
// pipelined in order, binary-safe (the wire format is resp_wire.ts). The npm clients would bring up Deno's
// Node layer (+26 to +49 MiB of RSS, DEVELOPERS.md). It knows no command beyond AUTH and SELECT at connect;
// redis_storage.ts uses it.

import {
  encodeCommand,
  NEED_MORE,
  ReplyReader,
  RespConnectionError,
  type RespReply,
  RespServerError,
} from "./resp_wire.ts";

/** Where to connect, from a `redis://` or `rediss://` URL. */
export interface RedisAddress {
  hostname: string;
  port: number;
  tls: boolean;
  /** The database number of the URL's path ("/0"); 0 when absent. */
  db: number;
  username: string | null;
  /** A secret: never put it in a message. */
  password: string | null;
}

/**
 * Parses `redis://[user[:password]@]host[:port][/db]` (rediss:// for TLS), port 6379 by default; throws a
 * TypeError naming what is wrong, never quoting the password.
 */
export function parseRedisUrl(text: string): RedisAddress {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new TypeError(`not a URL: write it like "redis://127.0.0.1:6379/0"`);
  }
  if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
    throw new TypeError(`the scheme must be redis:// or rediss:// (TLS), got ${url.protocol}//`);
  }
  const dbText = url.pathname.replace(/^\//, "");
  const db = dbText === "" ? 0 : Number(dbText);
  if (!Number.isInteger(db) || db < 0 || db > 65535) {
    throw new TypeError(`the path must be a database number like "/0", got "/${dbText}"`);
  }
  const hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
  if (hostname === "") throw new TypeError(`it names no host: write it like "redis://127.0.0.1:6379/0"`);
  return {
    hostname,
    port: url.port === "" ? 6379 : Number(url.port),
    tls: url.protocol === "rediss:",
    db,
    username: url.username === "" ? null : decodeURIComponent(url.username),
    password: url.password === "" ? null : decodeURIComponent(url.password),
  };
}

export interface RespClientOptions {
  /** A connection attempt taking longer fails, in ms. */
  connectTimeoutMs: number;
  /** A command whose reply takes longer breaks the connection (its replies can no longer be matched), in ms. */
  commandTimeoutMs: number;
  /** Extra CA certificates (PEM) trusted for rediss://. */
  caCerts?: string[];
  /** The password when the URL has none (`storage.redis.password_file`). A secret. */
  password?: string | null;
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
    const host = this.#address.hostname.includes(":")
      ? `[${this.#address.hostname}]`
      : this.#address.hostname;
    return `${this.#address.tls ? "rediss" : "redis"}://${host}:${this.#address.port}/${this.#address.db}`;
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
    this.#connection ??= openConnection(this.#address, this.#options, this.label).catch((error) => {
      this.#connection = null;
      throw error;
    });
    return this.#connection;
  }
}

async function openConnection(
  address: RedisAddress,
  options: RespClientOptions,
  label: string,
): Promise<Connection> {
  const signal = AbortSignal.timeout(options.connectTimeoutMs);
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
    const why = signal.aborted ? `no answer within ${options.connectTimeoutMs} ms` : (error as Error).message;
    throw new RespConnectionError(`Cannot connect to ${label}: ${why}`, { cause: error });
  }
  const connection = new Connection(conn, label, options.commandTimeoutMs);
  const password = address.password ?? options.password ?? null;
  try {
    if (password !== null) {
      await connection.send(
        address.username === null ? ["AUTH", password] : ["AUTH", address.username, password],
      );
    }
    if (address.db !== 0) await connection.send(["SELECT", String(address.db)]);
  } catch (error) {
    connection.close();
    if (error instanceof RespServerError) {
      // "WRONGPASS invalid username-password pair", "NOAUTH ...": the server's words carry no secret.
      throw new RespConnectionError(`${label} refused nexo's login: ${error.message}`, { cause: error });
    }
    throw error;
  }
  return connection;
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
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.#fail(`${this.#label} did not answer within ${this.#timeoutMs} ms`);
        reject(this.#broken);
      }, this.#timeoutMs);
    });
    return Promise.race([reply, timeout]).finally(() => clearTimeout(timer));
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
      try {
        this.#conn.close();
      } catch {
        // already closed
      }
    }
    for (const waiter of this.#pending.splice(0)) waiter.reject(this.#broken);
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
}
