// Each route's traffic over the last hour (per minute) and the last day (per hour): requests, bytes, status
// classes and a latency histogram, for the dashboard's charts and its p50/p99. Fixed size: 60 + 24 buckets
// per route key, and route keys are the config's hosts plus "-" for every unknown Host, at most 1,000 of them,
// so no client can grow it. Saved to and read from `admin.traffic_file` as JSON when the operator wants it.

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
const MINUTES = 60;
const HOURS = 24;
const MAX_ROUTES = 1000;
/** Upper bounds of the latency histogram, ms; the last one also counts anything slower. */
export const LATENCY_BOUNDS_MS = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 60000];

/** One minute or hour of one route. `status` counts 1xx..5xx at index 0..4. */
export interface Bucket {
  /** The bucket's start, ms since the epoch. */
  start: number;
  requests: number;
  bytes: number;
  status: number[];
  /** 502 and 504 answers: the upstream failed or did not answer in time. */
  gateway: number;
  latency: number[];
}

interface RouteHistory {
  minutes: Bucket[];
  hours: Bucket[];
}

/** What the dashboard draws for one route. */
export interface RouteTraffic {
  /** The last 60 minutes, oldest first, minutes without traffic included. */
  minutes: Bucket[];
  /** The last 24 hours, oldest first. */
  hours: Bucket[];
  /** Latency percentiles over the last 5 minutes, ms (a histogram bound), or null without requests. */
  p50Ms: number | null;
  p99Ms: number | null;
  /** Requests and 502/504 answers over the last 5 minutes: whether the upstream answers. */
  recent: { requests: number; gateway: number };
}

export class TrafficHistory {
  #routes = new Map<string, RouteHistory>();
  readonly #now: () => number;

  constructor(options: { now?: () => number } = {}) {
    this.#now = options.now ?? Date.now;
  }

  /** Counts one finished request (Metrics' listener). */
  record(route: string, status: number, bytes: number, durationMs: number): void {
    let history = this.#routes.get(route);
    if (history === undefined) {
      if (this.#routes.size >= MAX_ROUTES) return;
      history = { minutes: [], hours: [] };
      this.#routes.set(route, history);
    }
    const now = this.#now();
    for (
      const bucket of [
        current(history.minutes, now, MINUTE_MS, MINUTES),
        current(history.hours, now, HOUR_MS, HOURS),
      ]
    ) {
      bucket.requests++;
      bucket.bytes += bytes;
      const klass = Math.floor(status / 100) - 1;
      if (klass >= 0 && klass < 5) bucket.status[klass]!++;
      if (status === 502 || status === 504) bucket.gateway++;
      const index = LATENCY_BOUNDS_MS.findIndex((bound) => durationMs <= bound);
      bucket.latency[index === -1 ? LATENCY_BOUNDS_MS.length - 1 : index]!++;
    }
  }

  /** Every route's last hour and day, zero-filled, with its recent percentiles. */
  snapshot(): Record<string, RouteTraffic> {
    const now = this.#now();
    const out: Record<string, RouteTraffic> = {};
    for (const [route, history] of this.#routes) {
      const minutes = filled(history.minutes, now, MINUTE_MS, MINUTES);
      const recent = minutes.slice(-5);
      out[route] = {
        minutes,
        hours: filled(history.hours, now, HOUR_MS, HOURS),
        p50Ms: percentile(recent, 0.5),
        p99Ms: percentile(recent, 0.99),
        recent: {
          requests: recent.reduce((n, b) => n + b.requests, 0),
          gateway: recent.reduce((n, b) => n + b.gateway, 0),
        },
      };
    }
    return out;
  }

  /** The history as JSON text (for `admin.traffic_file`). */
  toJson(): string {
    return JSON.stringify({ version: 1, routes: Object.fromEntries(this.#routes) });
  }

  /**
   * Takes the history in `text` (a traffic file), keeping what is still inside its hour or day; anything it
   * cannot read is dropped with an Error naming why (the file is then started afresh).
   */
  restore(text: string): void {
    const data = JSON.parse(text) as { version?: number; routes?: Record<string, RouteHistory> };
    if (data.version !== 1 || typeof data.routes !== "object" || data.routes === null) {
      throw new Error("it is not a nexo traffic file of version 1");
    }
    const now = this.#now();
    const routes = new Map<string, RouteHistory>();
    for (const [route, history] of Object.entries(data.routes).slice(0, MAX_ROUTES)) {
      routes.set(route, {
        minutes: valid(history?.minutes).filter((b) => b.start > now - MINUTES * MINUTE_MS),
        hours: valid(history?.hours).filter((b) => b.start > now - HOURS * HOUR_MS),
      });
    }
    this.#routes = routes;
  }
}

function emptyBucket(start: number): Bucket {
  return {
    start,
    requests: 0,
    bytes: 0,
    status: [0, 0, 0, 0, 0],
    gateway: 0,
    latency: LATENCY_BOUNDS_MS.map(() => 0),
  };
}

/** The bucket for `now`, appended when it is new; the oldest beyond `keep` dropped. */
function current(buckets: Bucket[], now: number, size: number, keep: number): Bucket {
  const start = Math.floor(now / size) * size;
  const last = buckets.at(-1);
  if (last !== undefined && last.start === start) return last;
  const bucket = emptyBucket(start);
  buckets.push(bucket);
  while (buckets.length > keep || (buckets[0] !== undefined && buckets[0].start <= start - keep * size)) {
    buckets.shift();
  }
  return bucket;
}

/** The last `keep` buckets ending with `now`'s, empty ones where there was no traffic. */
function filled(buckets: Bucket[], now: number, size: number, keep: number): Bucket[] {
  const end = Math.floor(now / size) * size;
  const byStart = new Map(buckets.map((bucket) => [bucket.start, bucket]));
  return Array.from({ length: keep }, (_, i) => {
    const start = end - (keep - 1 - i) * size;
    return byStart.get(start) ?? emptyBucket(start);
  });
}

function percentile(buckets: Bucket[], p: number): number | null {
  const counts = LATENCY_BOUNDS_MS.map((_, i) =>
    buckets.reduce((sum, bucket) => sum + bucket.latency[i]!, 0)
  );
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  let seen = 0;
  for (const [i, count] of counts.entries()) {
    seen += count;
    if (seen >= p * total) return LATENCY_BOUNDS_MS[i]!;
  }
  return null;
}

function valid(buckets: unknown): Bucket[] {
  if (!Array.isArray(buckets)) return [];
  return buckets.filter((b): b is Bucket =>
    typeof b?.start === "number" && typeof b.requests === "number" && typeof b.bytes === "number" &&
    Array.isArray(b.status) && b.status.length === 5 && Array.isArray(b.latency) &&
    b.latency.length === LATENCY_BOUNDS_MS.length
  ).map((b) => ({
    start: b.start,
    requests: b.requests,
    bytes: b.bytes,
    gateway: Number(b.gateway) || 0,
    latency: b.latency.map((n: unknown) => Number(n) || 0),
    status: b.status.map((n: unknown) => Number(n) || 0),
  }));
}
