// The structured logger: the one place in nexo allowed to print. Events are short lowercase phrases with
// snake_case fields, written as readable lines on a terminal and as JSON lines otherwise. Lines are batched
// and written once per event-loop turn, so a busy access log costs one write, not one per request; writes to
// stderr are asynchronous and bounded, so a reader that stops (a full pipe) drops lines, counted, instead of
// stopping the proxy. It does not decide what is secret: callers never pass tokens or keys as fields.

import { startTimer, stopTimer, type Timer } from "./timers.ts";
import { isoTime } from "./iso_time.ts";

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFormat = "text" | "json";
export type LogFields = Record<string, string | number | boolean | null | undefined>;

const LEVEL_RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
/** Flush early past this many buffered bytes so a burst cannot grow the buffer without bound. */
const MAX_BUFFERED_BYTES = 64 * 1024;
/**
 * Most bytes waiting for an asynchronous sink; past it new lines are dropped and counted. With stderr a pipe
 * nobody reads, a synchronous write blocks the whole event loop once the pipe's 64 KiB fill: measured, nexo
 * stopped answering after ~300 logged requests. 1 MiB rides out a slow reader (a few thousand lines).
 */
const MAX_PENDING_BYTES = 1024 * 1024;

/** Where log lines go. With `write`, lines are written asynchronously and never block the event loop. */
export interface LogSink {
  writeSync(p: Uint8Array): number;
  write?(p: Uint8Array): Promise<number>;
}

export interface LoggerOptions {
  level?: LogLevel;
  format?: LogFormat;
  /** Where lines go; defaults to stderr. */
  sink?: LogSink;
}

/**
 * A logger. Writing never throws: a broken sink (closed pipe) drops lines rather than taking the proxy down,
 * and a sink that stops taking lines (asynchronous sinks) has new lines dropped past MAX_PENDING_BYTES,
 * counted in `droppedLines` and reported by a "log lines dropped" line once it takes lines again. Call
 * `settle()` (or `flush()` for a synchronous sink) before exiting so buffered lines are not lost.
 */
export class Logger {
  #level: number;
  #format: LogFormat;
  #sink: LogSink;
  #buffer: string[] = [];
  #bufferedBytes = 0;
  #scheduled = false;
  #encoder = new TextEncoder();
  /** The asynchronous write under way, if any. */
  #writing: Promise<void> | null = null;
  /** Lines dropped since the last "log lines dropped" report, and in all. */
  #droppedSinceReport = 0;
  #tap: ((level: LogLevel, event: string, fields: LogFields | undefined) => void) | null = null;
  #droppedTotal = 0;

  constructor(options: LoggerOptions = {}) {
    this.#level = LEVEL_RANK[options.level ?? "info"];
    this.#sink = options.sink ?? Deno.stderr;
    this.#format = options.format ?? (Deno.stderr.isTerminal() ? "text" : "json");
  }

  configure(options: Pick<LoggerOptions, "level" | "format">): void {
    if (options.level) this.#level = LEVEL_RANK[options.level];
    if (options.format) this.#format = options.format;
  }

  debug(event: string, fields?: LogFields): void {
    this.write("debug", event, fields);
  }
  info(event: string, fields?: LogFields): void {
    this.write("info", event, fields);
  }
  warn(event: string, fields?: LogFields): void {
    this.write("warn", event, fields);
  }
  error(event: string, fields?: LogFields): void {
    this.write("error", event, fields);
  }

  /** Whether a line at `level` would be written; lets hot paths skip building fields. */
  enabled(level: LogLevel): boolean {
    return LEVEL_RANK[level] >= this.#level;
  }

  /** Lines dropped because the sink did not take them in time, since the process started. */
  get droppedLines(): number {
    return this.#droppedTotal;
  }

  /**
   * Also hands every line written from now on (at the configured level or above) to `listener`, before it is
   * formatted; null stops. One listener: the dashboard's log tail. It must not log, and must not throw.
   */
  tap(listener: ((level: LogLevel, event: string, fields: LogFields | undefined) => void) | null): void {
    this.#tap = listener;
  }

  write(level: LogLevel, event: string, fields?: LogFields): void {
    if (LEVEL_RANK[level] < this.#level) return;
    this.#tap?.(level, event, fields);
    const line = this.#format === "json"
      ? formatJson(level, event, fields)
      : formatText(level, event, fields);
    if (this.#sink.write && this.#bufferedBytes + line.length > MAX_PENDING_BYTES) {
      this.#droppedSinceReport++;
      this.#droppedTotal++;
      return;
    }
    this.#buffer.push(line);
    this.#bufferedBytes += line.length;
    if (this.#bufferedBytes >= MAX_BUFFERED_BYTES) this.flush();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      startTimer(() => this.flush(), 0);
    }
  }

  /**
   * Writes everything buffered now: synchronously to a synchronous sink; to an asynchronous one it starts a
   * write unless one is under way (whose end writes what has gathered since).
   */
  flush(): void {
    this.#scheduled = false;
    if (this.#buffer.length === 0 && this.#droppedSinceReport === 0) return;
    const write = this.#sink.write?.bind(this.#sink);
    if (write === undefined) {
      const bytes = this.#take();
      try {
        writeAll(this.#sink, bytes);
      } catch {
        // A closed stderr must not crash the proxy; there is nowhere left to report it.
      }
      return;
    }
    if (this.#writing !== null) return;
    const bytes = this.#take();
    this.#writing = (async () => {
      try {
        for (let written = 0; written < bytes.length;) written += await write(bytes.subarray(written));
      } catch {
        // As above: a closed stderr drops lines.
      }
    })().finally(() => {
      this.#writing = null;
      if (this.#buffer.length > 0 || this.#droppedSinceReport > 0) this.flush();
    });
  }

  /**
   * Resolves once everything logged so far is written, or after `timeoutMs` (a reader that never reads must
   * not keep the process from exiting). For the last lines before exit.
   */
  async settle(timeoutMs = 2_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    this.flush();
    while (this.#writing !== null && Date.now() < deadline) {
      let timer: Timer | undefined;
      const late = new Promise<void>((resolve) => timer = startTimer(resolve, deadline - Date.now()));
      await Promise.race([this.#writing, late]);
      stopTimer(timer);
    }
  }

  /** The buffered lines as bytes, after a report of lines dropped since the last one. */
  #take(): Uint8Array {
    if (this.#droppedSinceReport > 0) {
      const fields = { count: this.#droppedSinceReport, reason: "log output was not read in time" };
      this.#buffer.unshift(
        this.#format === "json"
          ? formatJson("warn", "log lines dropped", fields)
          : formatText("warn", "log lines dropped", fields),
      );
      this.#droppedSinceReport = 0;
    }
    const text = this.#buffer.join("");
    this.#buffer = [];
    this.#bufferedBytes = 0;
    return this.#encoder.encode(text);
  }
}

function formatJson(level: LogLevel, event: string, fields?: LogFields): string {
  const record: Record<string, unknown> = { time: isoTime(Date.now()), level, msg: event };
  if (fields) {
    for (const key in fields) if (fields[key] !== undefined) record[key] = fields[key];
  }
  return JSON.stringify(record) + "\n";
}

function formatText(level: LogLevel, event: string, fields?: LogFields): string {
  let line = `${isoTime(Date.now())} ${level.toUpperCase().padEnd(5)} ${event}`;
  if (fields) {
    for (const key in fields) {
      const value = fields[key];
      if (value === undefined) continue;
      const text = String(value);
      line += ` ${key}=${/^[^\s"=]+$/.test(text) ? text : JSON.stringify(text)}`;
    }
  }
  return line + "\n";
}

/** Writes command output (not log lines: `check` results, `version`) to stdout, all of it. */
export function printOut(text: string): void {
  writeAll(Deno.stdout, new TextEncoder().encode(text));
}

/** Writes command output meant for stderr (`check` errors), all of it. */
export function printErr(text: string): void {
  writeAll(Deno.stderr, new TextEncoder().encode(text));
}

function writeAll(sink: { writeSync(p: Uint8Array): number }, bytes: Uint8Array): void {
  let written = 0;
  while (written < bytes.length) written += sink.writeSync(bytes.subarray(written));
}

/** The process-wide logger; lib/cli.ts configures it from flags and the environment. */
export const log: Logger = new Logger();
