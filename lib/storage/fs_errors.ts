// Turns a file system error from Deno into a StorageError whose message says what failed, on which path, and
// what the operator should do (disk full, read-only mount, permissions). It never reads or quotes file
// contents; it does not decide whether an error is expected (callers handle NotFound themselves).

import { errorMessage } from "../error_message.ts";
import { StorageError } from "./storage.ts";

/** The reason and the fix for OS error codes an operator can act on (see `describeFsError`). */
const KNOWN_CODES: Record<string, { reason: string; fix: string }> = {
  ENOSPC: {
    reason: "the disk is full",
    fix: "free space on the file system that holds it (df -h); nexo keeps its current files and retries",
  },
  EDQUOT: {
    reason: "the disk quota is used up",
    fix: "raise the quota of the user running nexo or free space",
  },
  EROFS: {
    reason: "the file system is read-only",
    fix: "remount it read-write, or set base_dir / cert_dir to a writable directory (in Docker, mount a " +
      "volume without :ro)",
  },
  EFBIG: {
    reason: "the file exceeds the process's file-size limit",
    fix: "raise the limit (ulimit -f, or LimitFSIZE= in the systemd unit)",
  },
  EIO: {
    reason: "the disk reported an I/O error",
    fix: "check the disk (dmesg, smartctl) and restore damaged files from a backup",
  },
  ENOTDIR: {
    reason: "a component of the path is a file, not a directory",
    fix: "move that file out of the way",
  },
};

// Deno sets `code` for most OS errors but not all (EFBIG arrives as "File too large (os error 27)"), so the
// errno in the message is the fallback. Linux numbers: the other systems nexo runs on are development ones.
const LINUX_ERRNO_CODES: Record<string, string> = {
  "5": "EIO",
  "20": "ENOTDIR",
  "27": "EFBIG",
  "28": "ENOSPC",
  "30": "EROFS",
  "122": "EDQUOT",
};

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === "string" && code !== "") return code;
  const errno = err instanceof Error ? /\(os error (\d+)\)/.exec(err.message)?.[1] : undefined;
  return errno !== undefined && Deno.build.os === "linux" ? LINUX_ERRNO_CODES[errno] : undefined;
}

/**
 * Wraps `err` from a file operation `action` ("write", "read", "rename", ...) on `path` in a StorageError
 * ("Cannot write "/etc/nexo/certs/a/privkey.pem": the disk is full (free space ...)"), keeping `err` as
 * the cause. Errors without a known fix keep Deno's own message, which names the path but no contents.
 */
export function toStorageError(err: unknown, action: string, path: string): StorageError {
  const code = codeOf(err);
  const where = `Cannot ${action} "${path}"`;
  if (err instanceof Deno.errors.NotCapable) {
    return new StorageError(
      `${where}: Deno's permissions do not allow it (run nexo with --allow-read and --allow-write ` +
        `covering this path)`,
      { cause: err, code: code ?? "NotCapable" },
    );
  }
  if (err instanceof Deno.errors.PermissionDenied) {
    return new StorageError(
      `${where}: permission denied (run nexo as the user that owns the directory, or fix its owner and ` +
        `mode with chown / chmod u+rwX; an immutable file needs chattr -i)`,
      { cause: err, code: code ?? "EACCES" },
    );
  }
  const known = code === undefined ? undefined : KNOWN_CODES[code];
  if (code !== undefined && known !== undefined) {
    return new StorageError(`${where}: ${known.reason} (${known.fix})`, { cause: err, code });
  }
  const detail = errorMessage(err);
  return new StorageError(`${where}: ${detail}`, code === undefined ? { cause: err } : { cause: err, code });
}
