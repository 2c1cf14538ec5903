// The Storage contract on Redis, so several nexo instances share certificates, ACME accounts and locks. Each
// value is a string key `<prefix>:v:<key>`; each prefix's children are a set `<prefix>:d:<prefix>` (what
// `list` reads); locks are `<prefix>:l:<name>` (SET NX PX with a random token, kept alive while held). Every
// change that touches more than one Redis key runs as one Lua script, which Redis executes atomically.

import type { RespClient } from "./resp_client.ts";
import { RespConnectionError, type RespReply, RespServerError } from "./resp_wire.ts";
import {
  checkKey,
  type LockOptions,
  type Storage,
  StorageError,
  type StorageKey,
  type StorageLock,
} from "./storage.ts";
import { startInterval, startTimer, stopTimer, unrefTimer } from "../timers.ts";

/** Lock timings, in ms. */
export interface RedisLockTimings {
  /** A holder that stops refreshing loses the lock after this long (it died, or lost Redis). */
  ttlMs: number;
  /** How often a holder extends its lock. */
  refreshMs: number;
  /** How often a waiter tries again. */
  pollMs: number;
}

/**
 * A dead holder's lock frees itself after 30 s, a tenth of a typical order's worth of waiting; holders extend
 * every 10 s, so two refreshes may fail (a Redis failover) before the lock is lost; waiters try every 500 ms.
 */
export const DEFAULT_REDIS_LOCK_TIMINGS: RedisLockTimings = { ttlMs: 30_000, refreshMs: 10_000, pollMs: 500 };

export interface RedisStorageOptions {
  client: RespClient;
  /** Key namespace (`storage.redis.prefix`), so one Redis can hold several clusters. */
  prefix: string;
  /**
   * A second namespace level below the prefix ("certs", "state"): two RedisStorages on one prefix then keep
   * apart what FileStorage keeps in two folders. Letters only.
   */
  area?: string;
  lockTimings?: RedisLockTimings;
}

/**
 * Storage on one Redis server (not Redis Cluster: the scripts reach keys they compute). Durability is
 * Redis's: with the default `appendfsync everysec` an acknowledged write survives a Redis crash except for its
 * last second, and a power loss of the Redis machine may lose that second too.
 */
export class RedisStorage implements Storage {
  readonly #client: RespClient;
  readonly #prefix: string;
  readonly #timings: RedisLockTimings;

  constructor(options: RedisStorageOptions) {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(options.prefix)) {
      throw new TypeError(`A Redis key prefix is 1 to 64 letters, digits, "_", "." or "-"`);
    }
    this.#client = options.client;
    if (options.area !== undefined && !/^[a-z]{1,16}$/.test(options.area)) {
      throw new TypeError(`A Redis storage area is 1 to 16 lowercase letters`);
    }
    this.#prefix = options.area === undefined ? options.prefix : `${options.prefix}:${options.area}`;
    this.#timings = options.lockTimings ?? DEFAULT_REDIS_LOCK_TIMINGS;
  }

  describe(key: StorageKey): string {
    return `${this.#client.label} ${this.#prefix}:v:${key}`;
  }

  async load(key: StorageKey): Promise<Uint8Array | null> {
    checkKey(key);
    const reply = await this.#run(`read ${key}`, ["GET", this.#value(key)]);
    return reply instanceof Uint8Array ? reply : null;
  }

  async store(key: StorageKey, value: Uint8Array | string): Promise<void> {
    checkKey(key);
    await this.#script(`write ${key}`, STORE_SCRIPT, [key, value]);
  }

  async delete(key: StorageKey): Promise<boolean> {
    checkKey(key);
    return Number(await this.#script(`delete ${key}`, DELETE_SCRIPT, [key])) > 0;
  }

  async list(prefix: StorageKey): Promise<string[]> {
    checkKey(prefix, true);
    const reply = await this.#run(`list ${prefix || "the top"}`, ["SMEMBERS", this.#dir(prefix)]);
    const decoder = new TextDecoder();
    return (Array.isArray(reply) ? reply : []).map((name) =>
      name instanceof Uint8Array ? decoder.decode(name) : String(name)
    ).sort();
  }

  async rename(from: StorageKey, to: StorageKey): Promise<void> {
    checkKey(from);
    checkKey(to);
    await this.#script(`move ${from} to ${to}`, RENAME_SCRIPT, [from, to]);
  }

  async lock(name: string, options: LockOptions = {}): Promise<StorageLock> {
    checkKey(name);
    const key = `${this.#prefix}:l:${name}`;
    const token = crypto.randomUUID();
    const { signal } = options;
    while (true) {
      signal?.throwIfAborted();
      const reply = await this.#run(`lock ${name}`, [
        "SET",
        key,
        token,
        "NX",
        "PX",
        String(this.#timings.ttlMs),
      ]);
      if (reply === "OK") return this.#held(name, key, token);
      await abortableSleep(this.#timings.pollMs, signal);
    }
  }

  /** A held lock: refreshed every `refreshMs`; `lost` aborts when a refresh finds another holder. */
  #held(name: string, key: string, token: string): StorageLock {
    const lost = new AbortController();
    let released = false;
    const refresh = startInterval(async () => {
      try {
        const kept = await this.#client.command([
          "EVAL",
          REFRESH_SCRIPT,
          "1",
          key,
          token,
          String(this.#timings.ttlMs),
        ]);
        if (Number(kept) === 0 && !released) {
          lost.abort(
            new StorageError(`The lock ${name} was taken over: this process held it past its expiry`),
          );
          stopTimer(refresh);
        }
      } catch {
        // Redis unreachable: the next refresh tries again; the expiry decides if it was too long.
      }
    }, this.#timings.refreshMs);
    unrefTimer(refresh);
    return {
      name,
      lost: lost.signal,
      release: async () => {
        if (released) return;
        released = true;
        stopTimer(refresh);
        // Only the holder's token deletes it: a lock lost and taken over stays with its new holder.
        await this.#client.command(["EVAL", RELEASE_SCRIPT, "1", key, token]).catch(() => {});
      },
    };
  }

  #value(key: string): string {
    return `${this.#prefix}:v:${key}`;
  }

  #dir(prefix: string): string {
    return `${this.#prefix}:d:${prefix}`;
  }

  /** Runs a script with the prefix as its first argument; maps its errors to StorageError. */
  #script(doing: string, script: string, args: Array<string | Uint8Array>): Promise<RespReply> {
    return this.#run(doing, ["EVAL", script, "0", this.#prefix, ...args]);
  }

  async #run(doing: string, args: Array<string | Uint8Array>): Promise<RespReply> {
    try {
      return await this.#client.command(args);
    } catch (error) {
      if (error instanceof RespServerError) {
        const conflict = /(BELOW|PREFIX|EXISTS|MISSING|INSIDE) (.*)$/.exec(error.message);
        if (conflict !== null) {
          throw new StorageError(
            `Cannot ${doing} in ${this.#client.label}: ${CONFLICTS[conflict[1]!]!(conflict[2]!)}`,
          );
        }
        throw new StorageError(`Cannot ${doing} in ${this.#client.label}: Redis answered ${error.message}`, {
          cause: error,
        });
      }
      if (error instanceof RespConnectionError) {
        throw new StorageError(`Cannot ${doing}: ${error.message} (is Redis running and reachable?)`, {
          cause: error,
        });
      }
      throw error;
    }
  }
}

/** The scripts' conflict replies, in words. */
const CONFLICTS: Record<string, (what: string) => string> = {
  BELOW: (what) => `"${what}" is a key, so nothing can be stored below it`,
  PREFIX: (what) => `"${what}" has keys below it, so it cannot be a key itself`,
  EXISTS: (what) => `"${what}" already exists`,
  MISSING: (what) => `"${what}" does not exist`,
  INSIDE: (what) => `"${what}" cannot be moved inside itself`,
};

function abortableSleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = startTimer(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      stopTimer(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

// The scripts share these helpers. ARGV[1] is the prefix. A path's parent is "" at the top; `d(path)` is the
// set of its children's names, `v(path)` its value.
const LUA_HELPERS = `
local p = ARGV[1]
local function v(path) return p .. ':v:' .. path end
local function d(path) return p .. ':d:' .. path end
local function split(path)
  local parts = {}
  for seg in string.gmatch(path, '[^/]+') do parts[#parts + 1] = seg end
  return parts
end
local function join(parts, n)
  return table.concat(parts, '/', 1, n)
end
local function exists(path)
  return redis.call('EXISTS', v(path)) == 1 or redis.call('EXISTS', d(path)) == 1
end
local function below_a_key(parts)
  for i = 1, #parts - 1 do
    local ancestor = join(parts, i)
    if redis.call('EXISTS', v(ancestor)) == 1 then return ancestor end
  end
  return nil
end
local function link(parts)
  for i = 1, #parts do
    redis.call('SADD', d(join(parts, i - 1)), parts[i])
  end
end
local function prune(parts)
  for i = #parts, 1, -1 do
    local path = join(parts, i)
    if exists(path) then return end
    redis.call('SREM', d(join(parts, i - 1)), parts[i])
  end
end
local function drop(prefix)
  for _, child in ipairs(redis.call('SMEMBERS', d(prefix))) do drop(prefix .. '/' .. child) end
  redis.call('DEL', d(prefix))
end
local function collect(path, out)
  if redis.call('EXISTS', v(path)) == 1 then out[#out + 1] = path end
  for _, child in ipairs(redis.call('SMEMBERS', d(path))) do collect(path .. '/' .. child, out) end
  return out
end
`;

const STORE_SCRIPT = LUA_HELPERS + `
local key, value = ARGV[2], ARGV[3]
local parts = split(key)
local ancestor = below_a_key(parts)
if ancestor then return redis.error_reply('BELOW ' .. ancestor) end
if redis.call('EXISTS', d(key)) == 1 then return redis.error_reply('PREFIX ' .. key) end
redis.call('SET', v(key), value)
link(parts)
return 'OK'
`;

const DELETE_SCRIPT = LUA_HELPERS + `
local key = ARGV[2]
local removed = 0
for _, path in ipairs(collect(key, {})) do
  redis.call('DEL', v(path))
  removed = removed + 1
end
drop(key)
prune(split(key))
return removed
`;

const RENAME_SCRIPT = LUA_HELPERS + `
local from, to = ARGV[2], ARGV[3]
if not exists(from) then return redis.error_reply('MISSING ' .. from) end
if exists(to) then return redis.error_reply('EXISTS ' .. to) end
if to == from or string.sub(to, 1, #from + 1) == from .. '/' then return redis.error_reply('INSIDE ' .. from) end
local to_parts = split(to)
local ancestor = below_a_key(to_parts)
if ancestor then return redis.error_reply('BELOW ' .. ancestor) end
local paths = collect(from, {})
for _, path in ipairs(paths) do
  local target = to .. string.sub(path, #from + 1)
  redis.call('RENAME', v(path), v(target))
  link(split(target))
end
drop(from)
prune(split(from))
return 'OK'
`;

/** Extends the lock `KEYS[1]` to ARGV[2] ms when ARGV[1] (the token) still holds it; 1 if so, else 0. */
const REFRESH_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`;

/** Deletes the lock `KEYS[1]` when ARGV[1] (the token) still holds it. */
const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;
