// POSIX file paths, as node:path/posix handles them, for the main isolate: importing node:path costs idle
// RSS for the life of the process (DEVELOPERS.md, "what an import costs"), and nexo needs five functions of
// it. Linux paths only: nexo runs on Linux (the VPS, the Docker image); Windows paths are not handled.

/** Removes "." and ".." segments and repeated slashes; keeps a leading "/" and a trailing one. */
function normalize(path: string): string {
  if (path === "") return ".";
  const absolute = path.startsWith("/");
  const trailing = path.endsWith("/");
  const out: string[] = [];
  for (const segment of path.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!absolute) out.push("..");
    } else out.push(segment);
  }
  let joined = out.join("/");
  if (joined === "") return absolute ? "/" : trailing ? "./" : ".";
  if (trailing) joined += "/";
  return absolute ? `/${joined}` : joined;
}

/** Joins segments with "/" and normalizes the result ("a", "../b" -> "b"); "." when all are empty. */
export function join(...segments: string[]): string {
  const nonEmpty = segments.filter((segment) => segment !== "");
  return nonEmpty.length === 0 ? "." : normalize(nonEmpty.join("/"));
}

/** The absolute path of `segments` taken from the right until one is absolute, else from the current directory. */
export function resolve(...segments: string[]): string {
  let path = "";
  for (let i = segments.length - 1; i >= 0 && !path.startsWith("/"); i--) {
    const segment = segments[i]!;
    if (segment !== "") path = path === "" ? segment : `${segment}/${path}`;
  }
  if (!path.startsWith("/")) path = path === "" ? Deno.cwd() : `${Deno.cwd()}/${path}`;
  const normal = normalize(path);
  return normal.length > 1 && normal.endsWith("/") ? normal.slice(0, -1) : normal;
}

export function isAbsolute(path: string): boolean {
  return path.startsWith("/");
}

/**
 * The path up to its last slash, trailing slashes ignored: "/a/b/" -> "/a", "a" -> ".", "/a" -> "/". Slashes
 * before the last segment are kept as written ("a//b" -> "a/"), as node:path does.
 */
export function dirname(path: string): string {
  if (path === "") return ".";
  let i = path.length - 1;
  while (i > 0 && path[i] === "/") i--;
  while (i > 0 && path[i] !== "/") i--;
  if (i <= 0) return path.startsWith("/") ? "/" : ".";
  // POSIX leaves a leading "//" implementation-defined; node:path keeps it.
  return i === 1 && path.startsWith("/") ? "//" : path.slice(0, i);
}

/** The last segment of the path, trailing slashes ignored: "/a/b/" -> "b", "/" -> "". */
export function basename(path: string): string {
  const trimmed = path.replace(/(.)\/+$/, "$1");
  if (trimmed === "/") return "";
  return trimmed.slice(trimmed.lastIndexOf("/") + 1);
}
