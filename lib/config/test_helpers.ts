// Shared by the config tests (not used by nexo itself).

import assert from "node:assert/strict";
import { ConfigError, type ConfigIssue } from "./errors.ts";
import { parseConfig } from "./parse.ts";

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
