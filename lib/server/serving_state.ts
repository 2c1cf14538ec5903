// What requests are served from, and how a reload changes it: the config in force, the snapshot each request
// reads once (routing table, access rules, balancers, limits; swapped whole, so a request never sees half of
// two configs), and the reload's bookkeeping (version, time, the keys that need a restart). lib/server/run.ts
// owns one; lib/server/serving_state_test.ts drives it without listeners.

import type { AccessRules } from "../access/rules.ts";
import type { Balancers } from "../balance/balancers.ts";
import { parseCidr } from "../cidr.ts";
import { usesAccessRules } from "../config/access.ts";
import type { Config } from "../config/types.ts";
import type { Logger } from "../log.ts";
import type { UpstreamPool } from "../proxy/upstream_client.ts";
import { buildRouteTable } from "../router.ts";
import type { ServingSnapshot } from "./handler.ts";

/** Config keys a running server cannot change in place (new state folders, a new issuer, the admin pages). */
export const RESTART_KEYS = ["issuer", "baseDir", "certDir", "storage", "admin"] as const;

/** What a reload changed, for its log line and for what runs after it. */
export interface ReloadSummary {
  /** Route hosts the reload adds, changes (any option) or removes. */
  added: string[];
  changed: string[];
  removed: string[];
  /** Keys that changed but are kept as they were until a restart (RESTART_KEYS). */
  restart: string[];
}

export class ServingState {
  #config: Config;
  #snapshot: ServingSnapshot;
  #version = 1;
  #loadedAt = new Date();
  readonly #context: { pool: UpstreamPool; log: Logger };

  private constructor(
    config: Config,
    snapshot: ServingSnapshot,
    context: { pool: UpstreamPool; log: Logger },
  ) {
    this.#config = config;
    this.#snapshot = snapshot;
    this.#context = context;
  }

  /** The state of the config nexo starts with: lib/access/ and lib/balance/ are imported only if it uses them. */
  static async create(config: Config, context: { pool: UpstreamPool; log: Logger }): Promise<ServingState> {
    const access = await accessRules(config, null, context.log);
    const balancers = await balancersFor(config, null, context);
    return new ServingState(config, servingSnapshot(config, access, balancers), context);
  }

  /** The config in force: a reload's, with the listen addresses that moved and the keys kept until a restart. */
  get config(): Config {
    return this.#config;
  }

  /** What a request starting now is served from (read it once per request). */
  get snapshot(): ServingSnapshot {
    return this.#snapshot;
  }

  /** 1 for the config nexo started with, +1 per applied reload. */
  get version(): number {
    return this.#version;
  }

  get loadedAt(): Date {
    return this.#loadedAt;
  }

  /**
   * Swaps in `next`. Access rules keep the buckets of routes whose rate limit did not change, balancers their
   * upstreams' health. `moveListeners` re-binds the listeners from the config in force's addresses to next's
   * and returns the keys ("listen", "httpListen") it could not move: those keep their old address in the
   * config in force, like RESTART_KEYS.
   */
  async apply(
    next: Config,
    moveListeners: (current: Config, next: Config) => string[],
  ): Promise<ReloadSummary> {
    const current = this.#config;
    const access = await accessRules(next, this.#snapshot.access, this.#context.log);
    const balancers = await balancersFor(next, this.#snapshot.balancers, this.#context);
    const routes = diffRoutes(current, next);
    const restart = RESTART_KEYS.filter((key) => JSON.stringify(current[key]) !== JSON.stringify(next[key]));
    const unmoved = moveListeners(current, next);
    // One assignment: a request reads the snapshot once, so it never sees half of the old and half of the new.
    this.#snapshot = servingSnapshot(next, access, balancers);
    this.#version++;
    this.#loadedAt = new Date();
    this.#config = {
      ...next,
      listen: unmoved.includes("listen") ? current.listen : next.listen,
      httpListen: unmoved.includes("httpListen") ? current.httpListen : next.httpListen,
      issuer: current.issuer,
      baseDir: current.baseDir,
      certDir: current.certDir,
      storage: current.storage,
      // The admin pages keep the settings they started with (a changed password needs a restart: logged).
      admin: current.admin,
    };
    return { ...routes, restart };
  }
}

/**
 * The access rules of `config`, from lib/access/ imported on first use (a config without rules loads none
 * of it); a route whose rate limit did not change keeps its buckets from `previous`.
 */
async function accessRules(
  config: Config,
  previous: AccessRules | null,
  log: Logger,
): Promise<AccessRules | null> {
  if (!usesAccessRules(config)) return null;
  return await (await import("../access/rules.ts")).AccessRules.fromConfig(config, previous, log);
}

/**
 * The balancers of `config`'s routes with several upstreams, `lb`, health checks or `retry`: lib/balance/
 * imported on first use, and `current` updated in place (it keeps upstream health across reloads).
 */
async function balancersFor(
  config: Config,
  current: Balancers | null,
  context: { pool: UpstreamPool; log: Logger },
): Promise<Balancers | null> {
  const used = config.routes.some((route) => route.kind === "proxy" && route.balancing !== null);
  if (current === null && !used) return null;
  const balancers = current ??
    await (await import("../balance/balancers.ts")).Balancers.create(context.pool, context.log);
  await balancers.update(config);
  return balancers;
}

function servingSnapshot(
  config: Config,
  access: AccessRules | null,
  balancers: Balancers | null,
): ServingSnapshot {
  return {
    table: buildRouteTable(config.routes),
    access,
    balancers,
    trustedProxies: config.trustedProxies.map(parseCidr),
    maxHeaderBytes: config.limits.maxHeaderBytes,
    readTimeoutMs: config.limits.readTimeoutMs,
  };
}

/** Which route hosts a reload adds, changes (any option) or removes. */
export function diffRoutes(
  before: Config,
  after: Config,
): { added: string[]; changed: string[]; removed: string[] } {
  const key = (route: Config["routes"][number]) => JSON.stringify({ ...route, position: null });
  const old = new Map(before.routes.map((route) => [route.host, key(route)]));
  const next = new Map(after.routes.map((route) => [route.host, key(route)]));
  return {
    added: [...next.keys()].filter((host) => !old.has(host)),
    changed: [...next.keys()].filter((host) => old.has(host) && old.get(host) !== next.get(host)),
    removed: [...old.keys()].filter((host) => !next.has(host)),
  };
}
