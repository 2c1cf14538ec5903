// A Logger whose JSON lines are kept in memory, for tests of code that logs (the ACME supervisor, renewal
// information); not used by nexo itself.

import { Logger } from "./log.ts";

/** One logged line, parsed. */
export type LogLine = Record<string, unknown>;

/**
 * A JSON Logger and the lines it wrote: `lines` fills as the logger flushes; `flushed()` flushes and returns
 * them.
 */
export function capturingLogger(): { log: Logger; lines: LogLine[]; flushed: () => LogLine[] } {
  const lines: LogLine[] = [];
  const decoder = new TextDecoder();
  const sink = {
    writeSync(bytes: Uint8Array) {
      for (const line of decoder.decode(bytes).split("\n")) if (line) lines.push(JSON.parse(line));
      return bytes.length;
    },
  };
  const log = new Logger({ format: "json", sink });
  return { log, lines, flushed: () => (log.flush(), lines) };
}
