// The error a bad config file turns into: every problem found, each with the file, line and column it is at.
// This module only formats and carries issues; finding them is parse.ts's job, printing them the CLI's.

/** One problem in a config file. `line` and `col` are 1-based; both are 0 when the issue is about the whole
 * file (it cannot be read, say) rather than a place in it. */
export interface ConfigIssue {
  file: string;
  line: number;
  col: number;
  /** What is wrong, where in the config (a key path like `proxies."api.example.com".upstream`), and how to
   * fix it. Never contains the Cloudflare API token. */
  message: string;
}

/**
 * Thrown by `parseConfig()` and `loadConfig()` when a config cannot be used; callers (the CLI's `check`
 * command, the reload loop) catch it and show `message`, or walk `issues` for structured output.
 * `message` holds every issue, one per line, as `FILE:LINE:COL: message` (`FILE: message` for whole-file
 * issues), in file order.
 */
export class ConfigError extends Error {
  override name = "ConfigError";
  /** Every issue found, in file order; never empty. */
  readonly issues: ConfigIssue[];

  constructor(issues: ConfigIssue[], options?: ErrorOptions) {
    if (issues.length === 0) throw new TypeError("ConfigError needs at least one issue");
    super(issues.map(formatIssue).join("\n"), options);
    this.issues = issues;
  }
}

/** Formats one issue as `FILE:LINE:COL: message`, or `FILE: message` when it has no position (line 0). */
export function formatIssue(issue: ConfigIssue): string {
  if (issue.line <= 0) return `${issue.file}: ${issue.message}`;
  return `${issue.file}:${issue.line}:${issue.col}: ${issue.message}`;
}

/** Sorts issues into file order (by line, then column), keeping the order they were found in for ties. */
export function sortIssues(issues: readonly ConfigIssue[]): ConfigIssue[] {
  return [...issues].sort((a, b) => a.line - b.line || a.col - b.col);
}
