// Shared by the config tests (not used by nexo itself).

import assert from "node:assert/strict";
import { ConfigError, type ConfigIssue } from "./errors.ts";
import { parseConfig } from "./parse.ts";
import type { CloudflareConfig, Config, ExecDnsConfig, Rfc2136Config } from "./types.ts";

/** The issues `parseConfig()` throws for `yaml`; fails the test when it does not throw a ConfigError. */
export function issuesOf(yaml: string, file: string): ConfigIssue[] {
  try {
    parseConfig(yaml, file);
  } catch (error) {
    if (error instanceof ConfigError) return error.issues;
    throw error;
  }
  assert.fail(`expected a ConfigError for:\n${yaml}`);
}

/** The default DNS provider's settings when it is Cloudflare, else null (what `cloudflare:` reads into). */
export function cloudflareOf(config: Config): CloudflareConfig | null {
  const provider = config.dns?.default;
  return provider?.provider === "cloudflare" ? provider.cloudflare : null;
}

/** The default DNS provider's settings when it is RFC 2136, else null. */
export function rfc2136Of(config: Config): Rfc2136Config | null {
  const provider = config.dns?.default;
  return provider?.provider === "rfc2136" ? provider.rfc2136 : null;
}

/** The default DNS provider's settings when it is exec, else null. */
export function execOf(config: Config): ExecDnsConfig | null {
  const provider = config.dns?.default;
  return provider?.provider === "exec" ? provider.exec : null;
}
