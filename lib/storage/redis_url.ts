// Redis addresses as `storage.redis.url` writes them (redis:// and rediss://, RFC-less but as redis-cli and
// every client read them): parsed for the config's checks, the client and the worker's network permission,
// and named in messages without the password. Small on purpose: the config loads it for every config.

import { formatAddr } from "../ip_address.ts";

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

/** "redis://host:port/db" (rediss:// for TLS) for messages: never the credentials. */
export function redisLabel(address: RedisAddress): string {
  return `${address.tls ? "rediss" : "redis"}://${formatAddr(address)}/${address.db}`;
}
