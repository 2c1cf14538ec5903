// Free space on a file system, for `nexo doctor`: Deno 2.9.6 has no statfs of its own, so node:fs's, in a
// module of its own that only doctor loads, lazily (the server never brings up the Node layer for it).

import { statfs } from "node:fs/promises";

/** Bytes an unprivileged user may still write on the file system holding `path` (f_bavail x f_bsize). */
export async function freeBytes(path: string): Promise<number> {
  const stats = await statfs(path);
  return Number(stats.bavail) * Number(stats.bsize);
}
