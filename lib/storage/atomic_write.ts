// Writing one file so that a reader sees the old content or the new, never a mix, and a crash or a full disk
// never leaves a truncated file under the real name: temp file beside it, fsync, rename, fsync the directory.
// Shared by the file storage (certificates, accounts) and the local CA. It knows nothing of keys or layouts.

import { basename, dirname, join } from "../path.ts";
import { toStorageError } from "./fs_errors.ts";

/** Writes a temp file beside `path`, fsyncs it and renames it over `path`; removes the temp on failure. */
export async function writeAndRename(path: string, bytes: Uint8Array, mode: number): Promise<void> {
  const temp = join(dirname(path), `.${basename(path)}.tmp-${crypto.randomUUID()}`);
  const file = await Deno.open(temp, { write: true, createNew: true, mode });
  try {
    try {
      for (let written = 0; written < bytes.length;) written += await file.write(bytes.subarray(written));
      // The data must be on disk before the rename is, or a power loss could leave an empty file behind the
      // new name (ext4 and XFS order data and rename only when told to).
      await file.sync();
    } finally {
      file.close();
    }
    await Deno.rename(temp, path);
  } catch (err) {
    await Deno.remove(temp).catch(() => {}); // best effort: the original error is the one to report
    throw err;
  }
}

/** Persists the directory entry changes (renames, creates, removes) in `dir`. */
export async function syncDir(dir: string): Promise<void> {
  if (Deno.build.os === "windows") return; // Windows cannot open a directory for fsync
  let handle: Deno.FsFile;
  try {
    handle = await Deno.open(dir, { read: true });
  } catch (err) {
    throw toStorageError(err, "open the directory for fsync", dir);
  }
  try {
    await handle.sync();
  } catch (err) {
    // Some file systems (e.g. certain FUSE mounts) cannot fsync a directory; there is nothing more to do.
    const code = (err as { code?: unknown }).code;
    if (code !== "EINVAL" && code !== "ENOTSUP") throw toStorageError(err, "fsync the directory", dir);
  } finally {
    handle.close();
  }
}
