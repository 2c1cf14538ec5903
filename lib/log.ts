// The structured logger: the one place in nexo allowed to print. Events are short lowercase phrases with
// snake_case fields, written as readable lines on a terminal and as JSON lines otherwise. Lines are batched
// and written once per event-loop turn, so a busy access log costs one write, not one per request.
// It does not decide what is secret: callers never pass tokens or keys as fields.

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFormat = "text" | "json";
export type LogFields = Record<string, string | number | boolean | null | undefined>;

const LEVEL_RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
/** Flush early past this many buffered bytes so a burst cannot grow the buffer without bound. */
const MAX_BUFFERED_BYTES = 64 * 1024;

export interface LoggerOptions {
  level?: LogLevel;
  format?: LogFormat;
  /** Where lines go; defaults to stderr. Must accept the whole buffer (Deno's stdio writeSync loops). */
  sink?: { writeSync(p: Uint8Array): number };
}

/**
 * A logger. Writing never throws: a broken sink (closed pipe) drops lines rather than taking the proxy down.
 * Call `flush()` before exiting so buffered lines are not lost.
 */
export class Logger {
  #level: number;
  #format: LogFormat;
  #sink: { writeSync(p: Uint8Array): number };
  #buffer: string[] = [];
  #bufferedBytes = 0;
  #scheduled = false;
  #encoder = new TextEncoder();

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

  write(level: LogLevel, event: string, fields?: LogFields): void {
    if (LEVEL_RANK[level] < this.#level) return;
    const line = this.#format === "json"
      ? formatJson(level, event, fields)
      : formatText(level, event, fields);
    this.#buffer.push(line);
    this.#bufferedBytes += line.length;
    if (this.#bufferedBytes >= MAX_BUFFERED_BYTES) this.flush();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      setTimeout(() => this.flush(), 0);
    }
  }

  /** Writes everything buffered now. */
  flush(): void {
    this.#scheduled = false;
    if (this.#buffer.length === 0) return;
    const text = this.#buffer.join("");
    this.#buffer = [];
    this.#bufferedBytes = 0;
    const bytes = this.#encoder.encode(text);
    try {
      writeAll(this.#sink, bytes);
    } catch {
      // A closed stderr must not crash the proxy; there is nowhere left to report it.
    }
  }
}

function formatJson(level: LogLevel, event: string, fields?: LogFields): string {
  const record: Record<string, unknown> = { time: new Date().toISOString(), level, msg: event };
  if (fields) {
    for (const key in fields) if (fields[key] !== undefined) record[key] = fields[key];
  }
  return JSON.stringify(record) + "\n";
}

function formatText(level: LogLevel, event: string, fields?: LogFields): string {
  let line = `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${event}`;
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
