// Request counters and the latency histogram behind /metrics, kept as plain numbers in Maps so that recording
// a request costs a few Map updates and no allocation beyond a label key. Rendering (Prometheus text format
// 0.0.4) happens only when /metrics is scraped. Labels are route keys, never raw Host headers, so a client
// sending random hosts cannot grow the series without bound.

/** Latency buckets in seconds: 5 ms to 10 s, the range a proxy's answers fall in. */
const LATENCY_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The label nexo uses for requests no route matched. */
export const NO_ROUTE = "-";

export interface CertificateGauge {
  names: string[];
  notAfter: Date;
}

/** One upstream of a balanced route, as lib/balance/ reports it (read only when /metrics is scraped). */
export interface UpstreamGauge {
  url: string;
  healthy: boolean;
  in_flight: number;
  requests: number;
  failures: number;
}

/** Counters for one process. All methods are cheap; `render` does the formatting. */
export class Metrics {
  /** Lines the logger dropped (Logger.droppedLines); read at render time. */
  readonly #droppedLogLines: () => number;
  /** Balanced routes' upstreams by route (lib/balance/); read at render time. */
  readonly #upstreams: () => Record<string, UpstreamGauge[]>;
  readonly #requests = new Map<string, number>();
  readonly #bytes = new Map<string, number>();
  readonly #upstreamErrors = new Map<string, number>();
  readonly #buckets = new Array<number>(LATENCY_BUCKETS_S.length).fill(0);
  #latencyCount = 0;
  #latencySum = 0;
  #inFlight = 0;
  #reloads = 0;
  #renewals = new Map<string, number>();
  readonly #refusals = new Map<string, number>();
  #listener: ((route: string, status: number, bytes: number, durationMs: number) => void) | null = null;

  constructor(
    options: { droppedLogLines?: () => number; upstreams?: () => Record<string, UpstreamGauge[]> } = {},
  ) {
    this.#droppedLogLines = options.droppedLogLines ?? (() => 0);
    this.#upstreams = options.upstreams ?? (() => ({}));
  }

  #renderUpstreams(family: (name: string, type: string, help: string) => void, out: string[]): void {
    const upstreams = Object.entries(this.#upstreams());
    if (upstreams.length === 0) return;
    const series: Array<[string, string, string, (u: UpstreamGauge) => number]> = [
      [
        "nexo_upstream_healthy",
        "gauge",
        "1 when a balanced route's upstream takes requests, else 0.",
        (u) => u.healthy ? 1 : 0,
      ],
      [
        "nexo_upstream_in_flight",
        "gauge",
        "Requests a balanced route's upstream is answering now.",
        (u) => u.in_flight,
      ],
      [
        "nexo_upstream_requests_total",
        "counter",
        "Requests sent to a balanced route's upstream (retries too).",
        (
          u,
        ) => u.requests,
      ],
      [
        "nexo_upstream_failures_total",
        "counter",
        "Requests to it that failed: no connection, timeout or 5xx.",
        (
          u,
        ) => u.failures,
      ],
    ];
    for (const [name, type, help, value] of series) {
      family(name, type, help);
      for (const [route, list] of upstreams) {
        for (const upstream of list) {
          out.push(`${name}{route="${label(route)}",upstream="${label(upstream.url)}"} ${value(upstream)}`);
        }
      }
    }
  }

  /** A request started (for the in-flight gauge); `finishRequest` must follow exactly once. */
  startRequest(): void {
    this.#inFlight++;
  }

  /**
   * Also hands every finished request to `listener` (the dashboard's traffic history); null stops. One
   * listener; it must not throw.
   */
  listen(
    listener: ((route: string, status: number, bytes: number, durationMs: number) => void) | null,
  ): void {
    this.#listener = listener;
  }

  /** Requests finished so far, every route and status. */
  get finishedRequests(): number {
    return this.#latencyCount;
  }

  /** A request finished: counted by route and status, its body bytes and its latency (ms). */
  finishRequest(route: string, status: number, bytes: number, durationMs: number): void {
    this.#inFlight--;
    this.#listener?.(route, status, bytes, durationMs);
    const key = `${route}\u0000${status}`;
    this.#requests.set(key, (this.#requests.get(key) ?? 0) + 1);
    this.#bytes.set(route, (this.#bytes.get(route) ?? 0) + bytes);
    if (status === 502 || status === 504) {
      this.#upstreamErrors.set(key, (this.#upstreamErrors.get(key) ?? 0) + 1);
    }
    const seconds = durationMs / 1000;
    this.#latencyCount++;
    this.#latencySum += seconds;
    for (let i = 0; i < LATENCY_BUCKETS_S.length; i++) {
      if (seconds <= LATENCY_BUCKETS_S[i]!) {
        this.#buckets[i]!++;
        break;
      }
    }
  }

  /**
   * Requests, 5xx answers and body bytes so far by route key (NO_ROUTE for unknown hosts), for the dashboard;
   * built from the counters above, so it costs nothing between calls.
   */
  routeTotals(): Record<string, { requests: number; errors: number; bytes: number }> {
    const totals: Record<string, { requests: number; errors: number; bytes: number }> = {};
    for (const [key, count] of this.#requests) {
      const [route = "", status = ""] = key.split("\u0000");
      const entry = totals[route] ??= { requests: 0, errors: 0, bytes: 0 };
      entry.requests += count;
      if (status.startsWith("5")) entry.errors += count;
    }
    for (const [route, bytes] of this.#bytes) {
      (totals[route] ??= { requests: 0, errors: 0, bytes: 0 }).bytes = bytes;
    }
    return totals;
  }

  /** A request the access rules refused, by route and reason ("denied", "not allowed", "rate limited"). */
  recordRefusal(route: string, reason: string): void {
    const key = `${route}\u0000${reason}`;
    this.#refusals.set(key, (this.#refusals.get(key) ?? 0) + 1);
  }

  recordReload(): void {
    this.#reloads++;
  }

  /** A certificate order ended: "success" or "failure". */
  recordRenewal(outcome: "success" | "failure"): void {
    this.#renewals.set(outcome, (this.#renewals.get(outcome) ?? 0) + 1);
  }

  /** The Prometheus text exposition of everything, plus certificate expiry gauges taken now. */
  render(certificates: CertificateGauge[], now: number = Date.now()): string {
    const out: string[] = [];
    const family = (name: string, type: string, help: string) =>
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    family("nexo_requests_total", "counter", "Requests answered, by route and status.");
    for (const [key, value] of this.#requests) {
      const [route, status] = key.split("\u0000");
      out.push(`nexo_requests_total{route="${label(route!)}",status="${status}"} ${value}`);
    }
    family("nexo_response_bytes_total", "counter", "Response body bytes sent, by route.");
    for (const [route, value] of this.#bytes) {
      out.push(`nexo_response_bytes_total{route="${label(route)}"} ${value}`);
    }
    family("nexo_upstream_errors_total", "counter", "Requests answered 502 or 504 because of the upstream.");
    for (const [key, value] of this.#upstreamErrors) {
      const [route, status] = key.split("\u0000");
      out.push(`nexo_upstream_errors_total{route="${label(route!)}",status="${status}"} ${value}`);
    }
    family("nexo_access_refused_total", "counter", "Requests the access rules refused, by route and reason.");
    for (const [key, value] of this.#refusals) {
      const [route, reason] = key.split("\u0000");
      out.push(`nexo_access_refused_total{route="${label(route!)}",reason="${reason}"} ${value}`);
    }
    this.#renderUpstreams(family, out);
    family("nexo_request_duration_seconds", "histogram", "Time from request to response end.");
    let cumulative = 0;
    LATENCY_BUCKETS_S.forEach((bound, i) => {
      cumulative += this.#buckets[i]!;
      out.push(`nexo_request_duration_seconds_bucket{le="${bound}"} ${cumulative}`);
    });
    out.push(`nexo_request_duration_seconds_bucket{le="+Inf"} ${this.#latencyCount}`);
    out.push(`nexo_request_duration_seconds_sum ${this.#latencySum}`);
    out.push(`nexo_request_duration_seconds_count ${this.#latencyCount}`);
    family(
      "nexo_requests_in_flight",
      "gauge",
      "Requests being answered now (streams and WebSockets included).",
    );
    out.push(`nexo_requests_in_flight ${this.#inFlight}`);
    family("nexo_config_reloads_total", "counter", "Config reloads applied.");
    out.push(`nexo_config_reloads_total ${this.#reloads}`);
    family("nexo_certificate_orders_total", "counter", "ACME orders finished, by outcome.");
    for (const [outcome, value] of this.#renewals) {
      out.push(`nexo_certificate_orders_total{outcome="${outcome}"} ${value}`);
    }
    family("nexo_certificate_expiry_seconds", "gauge", "Seconds until each served certificate expires.");
    for (const cert of certificates) {
      const seconds = Math.round((cert.notAfter.getTime() - now) / 1000);
      out.push(`nexo_certificate_expiry_seconds{names="${label(cert.names.join(","))}"} ${seconds}`);
    }
    const memory = Deno.memoryUsage();
    family(
      "nexo_log_lines_dropped_total",
      "counter",
      "Log lines dropped because stderr was not read in time.",
    );
    out.push(`nexo_log_lines_dropped_total ${this.#droppedLogLines()}`);
    family("process_resident_memory_bytes", "gauge", "Resident set size of the nexo process.");
    out.push(`process_resident_memory_bytes ${memory.rss}`);
    family("nexo_js_heap_bytes", "gauge", "JavaScript heap: `used` by live objects, `total` reserved by V8.");
    out.push(`nexo_js_heap_bytes{kind="used"} ${memory.heapUsed}`);
    out.push(`nexo_js_heap_bytes{kind="total"} ${memory.heapTotal}`);
    family(
      "nexo_js_external_bytes",
      "gauge",
      "Memory outside the heap held by JavaScript objects (buffers).",
    );
    out.push(`nexo_js_external_bytes ${memory.external}`);
    return out.join("\n") + "\n";
  }
}

/** Escapes a label value (Prometheus text format: backslash, double quote, newline). */
function label(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}
