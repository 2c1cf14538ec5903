// Load generators: runs wrk and h2load, and curl for single large transfers, as subprocesses and parses their
// text output into numbers. A run whose output cannot be parsed, or whose tool cannot run, throws; slow
// numbers never do, and a failed transfer is a result for the caller to report.

/** One load run's result. `errors` counts non-2xx answers and socket errors the tool reported. */
export interface LoadResult {
  requestsPerSec: number;
  /** Requests completed in the run; only wrk reports it. */
  requests?: number;
  /** 99th percentile latency in ms; only wrk with `--latency` reports it. */
  p99Ms?: number;
  errors: number;
}

/** Options for `runWrk`. */
export interface WrkOptions {
  connections: number;
  durationSec: number;
  threads?: number;
  /** Extra request headers, e.g. `["Connection: close"]`. */
  headers?: string[];
}

/** Runs `wrk --latency` against `url` (HTTP/1.1, keep-alive unless a header says otherwise). */
export async function runWrk(url: string, options: WrkOptions): Promise<LoadResult> {
  const threads = Math.min(options.threads ?? 2, options.connections);
  const args = ["--latency", "-t", String(threads), "-c", String(options.connections)];
  args.push("-d", `${options.durationSec}s`, "--timeout", "10s");
  for (const header of options.headers ?? []) args.push("-H", header);
  const out = await runTool("wrk", [...args, url]);
  return parseWrkOutput(out);
}

/** Parses wrk's report (requests/sec, the 99% line of `--latency`, error lines). */
export function parseWrkOutput(out: string): LoadResult {
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(out);
  if (!rps) throw new Error(`Cannot parse wrk output (no "Requests/sec" line):\n${out}`);
  const p99 = /^\s+99%\s+([\d.]+)(us|ms|s)\s*$/m.exec(out);
  let errors = 0;
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
  if (non2xx) errors += Number(non2xx[1]);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  if (socket) errors += socket.slice(1).reduce((sum, n) => sum + Number(n), 0);
  const result: LoadResult = { requestsPerSec: Number(rps[1]), errors };
  const requests = /^\s+(\d+) requests in /m.exec(out);
  if (requests) result.requests = Number(requests[1]);
  if (p99) result.p99Ms = Number(p99[1]) * { us: 0.001, ms: 1, s: 1000 }[p99[2] as "us" | "ms" | "s"];
  return result;
}

/** Options for `runH2load`. */
export interface H2loadOptions {
  requests: number;
  clients: number;
  /** Concurrent streams per connection (`-m`). */
  streams: number;
  /** Use HTTP/1.1 instead of h2 (`--h1`). */
  h1?: boolean;
  headers?: string[];
}

/** Runs h2load against `url` for a fixed number of requests. */
export async function runH2load(url: string, options: H2loadOptions): Promise<LoadResult> {
  const args = ["-n", String(options.requests), "-c", String(options.clients), "-m", String(options.streams)];
  if (options.h1) args.push("--h1");
  for (const header of options.headers ?? []) args.push("-H", header);
  const out = await runTool("h2load", [...args, url]);
  return parseH2loadOutput(out);
}

/** Parses h2load's summary (`finished in ..., N req/s`, the `requests:` and `status codes:` lines). */
export function parseH2loadOutput(out: string): LoadResult {
  const rps = /finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(out);
  if (!rps) throw new Error(`Cannot parse h2load output (no "finished in" line):\n${out}`);
  const requests =
    /requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored/
      .exec(out);
  const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out);
  let errors = 0;
  if (requests) errors += Number(requests[1]) - Number(requests[2]);
  if (codes) errors += Number(codes[3]) + Number(codes[4]);
  return { requestsPerSec: Number(rps[1]), errors };
}

/** Options for `runCurlTransfer`. */
export interface TransferOptions {
  /** PEM file curl verifies the server against. */
  caFile: string;
  /** Upload this file with PUT (`-T`, Content-Length known); without it, GET and discard the body. */
  uploadFile?: string;
  /** A response header whose value to return (e.g. a byte count the receiving end reports). */
  readHeader?: string;
}

/** One curl transfer's outcome; `bytesPerSec` is curl's average for the direction that carried the body. */
export interface TransferResult {
  status: number;
  /** Bytes curl received (download) or sent (upload). */
  bytes: number;
  bytesPerSec: number;
  /** The value of `readHeader`, "" when absent. */
  header: string;
  /** curl's error message when it exited non-zero, else "". */
  error: string;
}

/**
 * Transfers one body with `curl --http1.1` (no Expect: 100-continue, so every proxy sees the body at once),
 * resolving the URL's host to 127.0.0.1. Throws only when curl cannot run or prints nothing parsable; a
 * failed transfer comes back with `error` set.
 */
export async function runCurlTransfer(url: string, options: TransferOptions): Promise<TransferResult> {
  const { hostname, port } = new URL(url);
  const direction = options.uploadFile ? "upload" : "download";
  const format = `%{http_code} %{size_${direction}} %{speed_${direction}} ` +
    (options.readHeader ? `%header{${options.readHeader}}` : "-");
  const args = ["-sS", "--http1.1", "-o", "/dev/null", "-w", format, "--cacert", options.caFile];
  args.push("--resolve", `${hostname}:${port}:127.0.0.1`);
  if (options.uploadFile) args.push("-T", options.uploadFile, "-H", "Expect:");
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command("curl", { args: [...args, url], stdout: "piped", stderr: "piped" })
      .output();
  } catch (err) {
    throw new Error(`Cannot run "curl": ${(err as Error).message} (install it: apt-get install curl)`, {
      cause: err,
    });
  }
  const out = new TextDecoder().decode(output.stdout);
  const match = /^(\d+) (\d+) ([\d.]+) (.*)$/.exec(out);
  if (!match) throw new Error(`Cannot parse curl's -w output "${out}" for ${url}`);
  return {
    status: Number(match[1]),
    bytes: Number(match[2]),
    bytesPerSec: Number(match[3]),
    header: options.readHeader ? match[4]!.trim() : "",
    error: output.success ? "" : new TextDecoder().decode(output.stderr).trim(),
  };
}

async function runTool(cmd: string, args: string[]): Promise<string> {
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  } catch (err) {
    throw new Error(
      `Cannot run "${cmd}": ${(err as Error).message} (install it: apt-get install wrk nghttp2-client)`,
      {
        cause: err,
      },
    );
  }
  const text = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
  if (!output.success) {
    throw new Error(`"${cmd} ${args.join(" ")}" exited with code ${output.code}:\n${text}`);
  }
  return text;
}
