// The last log lines and the latest requests, for the dashboard: two fixed-size rings fed by the logger's tap
// (lib/log.ts), so neither a busy site nor a flood of made-up Host headers can grow them. Request lines
// ("request" events, the access log) go to their own ring so they do not push the rest out.

import type { LogFields, LogLevel } from "../log.ts";
import { isoTime } from "../iso_time.ts";

/** One line as the page shows it; every value is text from the log, shown as text. */
export interface TailLine {
  at: string;
  level: LogLevel;
  msg: string;
  fields: LogFields;
}

/**
 * 300 lines is a few hours of a quiet server's log; 100 requests fill a screen. A field value is cut at 300
 * characters (a request path may be 8 KiB), which bounds the rings at a few hundred KiB.
 */
export const TAIL_LIMITS = { lines: 300, requests: 100, valueChars: 300 };

export class LogTail {
  readonly #lines: TailLine[] = [];
  readonly #requests: TailLine[] = [];
  readonly #now: () => number;

  constructor(options: { now?: () => number } = {}) {
    this.#now = options.now ?? Date.now;
  }

  /** The logger's tap: keeps the line in its ring, dropping the oldest. */
  add(level: LogLevel, event: string, fields: LogFields | undefined): void {
    const ring = event === "request" ? this.#requests : this.#lines;
    const kept: LogFields = {};
    for (const [key, value] of Object.entries(fields ?? {})) {
      if (value === undefined) continue;
      kept[key] = typeof value === "string" && value.length > TAIL_LIMITS.valueChars
        ? `${value.slice(0, TAIL_LIMITS.valueChars)}…`
        : value;
    }
    ring.push({ at: isoTime(this.#now()), level, msg: event, fields: kept });
    const limit = event === "request" ? TAIL_LIMITS.requests : TAIL_LIMITS.lines;
    if (ring.length > limit) ring.splice(0, ring.length - limit);
  }

  /** The kept log lines, oldest first. */
  lines(): TailLine[] {
    return [...this.#lines];
  }

  /** The latest requests, oldest first. */
  requests(): TailLine[] {
    return [...this.#requests];
  }
}
