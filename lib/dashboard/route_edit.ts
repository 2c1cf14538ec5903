// The dashboard's route form as an edit of the config's YAML text: add a route, change where one goes, or
// remove one, touching only that route's lines, so comments, key order and every other setting stay as the
// operator wrote them. It does not validate: the caller checks the result exactly as `nexo check` does.

/** What the form asks for: a proxy to `upstream` or a redirect to `redirect`, or `remove`. */
export type RouteChange =
  | { action: "set"; host: string; upstream: string }
  | { action: "set"; host: string; redirect: string }
  | { action: "remove"; host: string };

/** A change the text's shape does not allow (said so the operator can edit the YAML instead). */
export class RouteEditError extends Error {
  override name = "RouteEditError";
}

const COMMENT_OR_BLANK = /^\s*(#.*)?$/;

/** The config `text` with `change` applied (a trailing newline kept). Throws RouteEditError. */
export function editRoute(text: string, change: RouteChange): string {
  const host = change.host.trim().toLowerCase();
  if (!/^(\*\.)?[a-z0-9.-]+$/.test(host)) {
    throw new RouteEditError(`"${change.host}" is not a host name like app.example.com or *.example.com`);
  }
  const lines = text.split("\n");
  const start = lines.findIndex((line) => /^proxies\s*:/.test(line));
  if (start !== -1 && !/^proxies\s*:\s*(#.*)?$/.test(lines[start]!)) {
    throw new RouteEditError(
      `proxies: is written on one line (flow style) on line ${
        start + 1
      }: edit that line in the config instead`,
    );
  }
  if (start === -1) {
    if (change.action === "remove") throw new RouteEditError(`there is no route for ${host}`);
    const body = lines.at(-1) === "" ? lines.slice(0, -1) : lines;
    return [...body, "proxies:", ...routeBlock("  ", host, change), ""].join("\n");
  }
  // The block runs until the next line at column 1 that is not a comment or blank.
  let end = start + 1;
  while (end < lines.length && (COMMENT_OR_BLANK.test(lines[end]!) || /^\s/.test(lines[end]!))) end++;
  while (end > start + 1 && COMMENT_OR_BLANK.test(lines[end - 1]!)) end--;
  const entries = routeEntries(lines, start + 1, end);
  const indent = entries[0]?.indent ?? "  ";
  const found = entries.find((entry) => entry.host === host);
  let replacement: string[];
  if (change.action === "remove") {
    if (found === undefined) throw new RouteEditError(`there is no route for ${host}`);
    replacement = [];
  } else if (found === undefined) {
    lines.splice(end, 0, ...routeBlock(indent, host, change));
    return lines.join("\n");
  } else {
    replacement = changedRoute(lines.slice(found.from, found.to), indent, host, change);
  }
  lines.splice(found!.from, found!.to - found!.from, ...replacement);
  return lines.join("\n");
}

interface Entry {
  host: string;
  indent: string;
  /** Its key line, and the line after its last. */
  from: number;
  to: number;
}

/** The routes between `from` and `to`: each key line at the block's indentation and the lines under it. */
function routeEntries(lines: string[], from: number, to: number): Entry[] {
  const entries: Entry[] = [];
  let indent: string | null = null;
  for (let i = from; i < to; i++) {
    const line = lines[i]!;
    if (COMMENT_OR_BLANK.test(line)) continue;
    const lead = /^(\s*)/.exec(line)![1]!;
    indent ??= lead;
    if (lead !== indent) continue;
    const key = /^\s*(?:"([^"]+)"|'([^']+)'|([^\s:#][^:#]*?))\s*:(?:\s|$)/.exec(line);
    if (key === null) continue;
    const last = entries.at(-1);
    if (last) last.to = i;
    entries.push({ host: (key[1] ?? key[2] ?? key[3] ?? "").toLowerCase(), indent, from: i, to });
  }
  // A route ends at its last line of its own, not at comments between it and the next.
  for (const entry of entries) {
    while (entry.to > entry.from + 1 && COMMENT_OR_BLANK.test(lines[entry.to - 1]!)) entry.to--;
  }
  return entries;
}

function routeBlock(
  indent: string,
  host: string,
  change: Exclude<RouteChange, { action: "remove" }>,
): string[] {
  const [key, value] = "upstream" in change ? ["upstream", change.upstream] : ["redirect", change.redirect];
  return [`${indent}${JSON.stringify(host)}:`, `${indent}${indent}${key}: ${JSON.stringify(value.trim())}`];
}

/**
 * The route's lines with its target changed: the `upstream:` (or `redirect:`) line and anything nested under
 * it replaced, every other option kept. A route of the other kind, or written on one line, is replaced whole:
 * its options belong to the other kind.
 */
function changedRoute(
  lines: string[],
  indent: string,
  host: string,
  change: Exclude<RouteChange, { action: "remove" }>,
): string[] {
  const [key, value] = "upstream" in change ? ["upstream", change.upstream] : ["redirect", change.redirect];
  const keyLine = lines.findIndex((line, i) => i > 0 && new RegExp(`^\\s+${key}\\s*:`).test(line));
  if (keyLine === -1) {
    // Replaced whole: only when nothing but its target would be lost (an allow list or a sign-in dropped
    // silently would open the site).
    const kept = /^[^:]*:\s*(#.*)?$/.test(lines[0]!) &&
      lines.slice(1).every((line) =>
        COMMENT_OR_BLANK.test(line) || /^\s+(upstream|redirect|status|keep_path)\s*:/.test(line)
      );
    if (!kept) {
      throw new RouteEditError(
        `the route for ${host} has settings the form does not show (or is written on one line): change its ` +
          `${key} in the config editor, so that they stay`,
      );
    }
    return routeBlock(indent, host, change);
  }
  const lead = /^(\s*)/.exec(lines[keyLine]!)![1]!;
  let after = keyLine + 1;
  while (
    after < lines.length &&
    (/^\s*$/.test(lines[after]!) || /^(\s*)/.exec(lines[after]!)![1]!.length > lead.length)
  ) {
    after++;
  }
  return [
    ...lines.slice(0, keyLine),
    `${lead}${key}: ${JSON.stringify(value.trim())}`,
    ...lines.slice(after),
  ];
}
