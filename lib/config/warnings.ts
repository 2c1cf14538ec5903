// Warnings about a valid config: settings that are accepted but will not do all that they say on this
// runtime. Pure: the server logs them at start and on every reload, `nexo check` prints them. Problems that
// make a config invalid are parse.ts's errors, not warnings.

import type { Config } from "./types.ts";

/** One warning: the config key it is about and a sentence saying what happens and what to do. */
export interface ConfigWarning {
  key: string;
  message: string;
}

/**
 * Request-head sizes Deno 2.9.6 refuses before nexo sees the request: over HTTP/2 it advertises
 * SETTINGS_MAX_HEADER_LIST_SIZE 16384 and answers a larger list with a bare 431 (measured: a 16,000-byte
 * header passes, 16,300 does not); over HTTP/1.1 hyper answers 400 to a head over 65,536 bytes. Neither is
 * configurable from JavaScript.
 */
export const HTTP2_HEADER_LIMIT_BYTES = 16 * 1024;
export const HTTP1_HEADER_LIMIT_BYTES = 64 * 1024;

/** Every warning for `config`, in a stable order; empty when there is nothing to say. */
export function configWarnings(config: Config): ConfigWarning[] {
  const warnings: ConfigWarning[] = [];
  const maxHeader = config.limits.maxHeaderBytes;
  if (maxHeader > HTTP2_HEADER_LIMIT_BYTES) {
    const over = maxHeader > HTTP1_HEADER_LIMIT_BYTES
      ? "over HTTP/1.1 Deno refuses heads past 64 KiB with 400, and over HTTP/2"
      : "over HTTP/2";
    warnings.push({
      key: "limits.max_header",
      message: `${maxHeader} bytes is more than Deno lets through: ${over} past 16 KiB with a bare 431 ` +
        `before nexo sees the request (set it to 16KiB or less for one limit on both protocols)`,
    });
  }
  return warnings;
}
