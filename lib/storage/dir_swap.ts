// Replaces every file of one storage directory as a unit, so that a crash at any moment leaves a reader of
// the directory tree a complete old set or a complete new set under a visible name, never a mix (a
// certificate with another certificate's key), and finishes or undoes the interrupted swap next time.
// It does not lock: callers serialize swaps and recoveries of one directory.

import { joinKey, type Storage, type StorageKey } from "./storage.ts";

/**
 * How a swap of directory X moves through names. Readers that skip dot-entries (lib/tls/cert_files.ts's
 * loadCertDir, certbot-style tools) see only X and X+next; "+" never occurs in a DNS name, so these names
 * cannot collide with a certificate directory.
 *
 *   1. recoverDirectory       finish or undo an earlier interrupted swap; this deletes .X+new, the
 *                             invisible leftover of an uncommitted write
 *   2. write  .X+new/<files>  each file written atomically and fsynced, in the caller's order; invisible
 *   3. rename .X+new -> X+next    THE COMMIT POINT. Readers see X (old, complete) and X+next (new,
 *                                 complete); loadCertDir keeps the later-expiring of the two per name.
 *   4. rename X -> .X+old     (skipped when X does not exist) readers see X+next only: complete
 *   5. rename X+next -> X     readers see X only: the new set
 *   6. delete .X+old
 *
 * Every rename is atomic and fsynced (Storage contract), so after a crash or power loss the tree is in one
 * of the states between two steps, and in each a complete set is visible. Renaming the files one by one
 * (privkey.pem, then fullchain.pem) would not do: between the two renames the visible pair does not match.
 * Recovery (`recoverDirectory`): X+next exists only after step 3, so it rolls forward (4-6); otherwise the
 * write never committed and it deletes the invisible leftovers (.X+new, .X+old), keeping X as it was.
 * Without a crash there is one narrower window: a reader that lists the tree before step 3 and opens X
 * between steps 4 and 5 finds X gone (an atomic directory exchange, renameat2, is not available in Deno).
 * loadCertDir reports that as a missing file and the next load finds X; nexo's own server gets renewed
 * certificates from the ACME worker in memory, not by re-reading the directory.
 */
export interface SwapNames {
  /** Step 2's directory: hidden, possibly incomplete. */
  staging: StorageKey;
  /** Step 3's directory: visible, complete. */
  next: StorageKey;
  /** Step 4's directory: hidden, the replaced set. */
  old: StorageKey;
}

/** The sibling names used while swapping `dir` (see SwapNames). */
export function swapNames(dir: StorageKey): SwapNames {
  const slash = dir.lastIndexOf("/");
  const parent = slash < 0 ? "" : dir.slice(0, slash);
  const base = dir.slice(slash + 1);
  return {
    staging: joinKey(parent, `.${base}+new`),
    next: joinKey(parent, `${base}+next`),
    old: joinKey(parent, `.${base}+old`),
  };
}

/**
 * If `entry` (a name from `storage.list`) is one of a swap's sibling names, the directory name it belongs
 * to ("example.com+next" -> "example.com"); otherwise undefined.
 */
export function swapOwner(entry: string): string | undefined {
  if (entry.endsWith("+next") && !entry.startsWith(".")) return entry.slice(0, -"+next".length);
  if (entry.startsWith(".") && (entry.endsWith("+new") || entry.endsWith("+old"))) return entry.slice(1, -4);
  return undefined;
}

/** One file of the new set. */
export interface SwapFile {
  name: string;
  value: string | Uint8Array;
  /** Stored with `private: true` (mode 0600 in FileStorage). */
  private?: boolean;
}

/** What `replaceDirectory` writes. */
export interface Replacement {
  /** The directory key, e.g. "example.com". */
  dir: StorageKey;
  /** Every file of the new set, in the order they are written; files of the old set not named here go. */
  files: SwapFile[];
}

/**
 * Replaces the directory `replacement.dir` with exactly `replacement.files`, crash-safely (see SwapNames).
 * Finishes or undoes an earlier interrupted swap of the same directory first. Rejects with the storage's
 * error; then the old set is still visible, alone or beside the new one (whatever happened is finished by
 * the next `recoverDirectory` or `replaceDirectory`). Callers hold a lock for `dir`.
 */
export async function replaceDirectory(storage: Storage, replacement: Replacement): Promise<void> {
  const names = swapNames(replacement.dir);
  await recoverDirectory(storage, replacement.dir); // 1
  for (const file of replacement.files) { // 2
    await storage.store(joinKey(names.staging, file.name), file.value, { private: file.private === true });
  }
  await storage.rename(names.staging, names.next); // 3: commit
  await promoteNext(storage, replacement.dir, names); // 4-6
}

/**
 * Brings `dir` back to a single directory after a crash: rolls a committed swap forward, deletes what an
 * uncommitted one left. Resolves "rolled-forward", "cleaned" (leftovers deleted) or "clean" (nothing to
 * do). Idempotent, and itself crash-safe at every step. Callers hold a lock for `dir`.
 */
export async function recoverDirectory(
  storage: Storage,
  dir: StorageKey,
): Promise<"clean" | "cleaned" | "rolled-forward"> {
  const names = swapNames(dir);
  const slash = dir.lastIndexOf("/");
  const siblings = new Set(await storage.list(slash < 0 ? "" : dir.slice(0, slash)));
  const base = (key: string) => key.slice(key.lastIndexOf("/") + 1);
  // A staging directory is never part of the outcome: uncommitted, or a stray beside a committed X+next.
  const staging = siblings.has(base(names.staging)) && await storage.delete(names.staging);
  if (siblings.has(base(names.next))) {
    // An .X+old beside X and X+next is from an earlier swap that crashed in step 6; X is newer than it.
    if (siblings.has(base(dir))) await storage.delete(names.old);
    await promoteNext(storage, dir, names);
    return "rolled-forward";
  }
  const old = siblings.has(base(names.old)) && await storage.delete(names.old);
  return staging || old ? "cleaned" : "clean";
}

/** Steps 4-6: X+next becomes X; the old X is removed. */
async function promoteNext(storage: Storage, dir: StorageKey, names: SwapNames): Promise<void> {
  const slash = dir.lastIndexOf("/");
  const current = await storage.list(slash < 0 ? "" : dir.slice(0, slash));
  if (current.includes(dir.slice(slash + 1))) await storage.rename(dir, names.old); // 4
  await storage.rename(names.next, dir); // 5
  await storage.delete(names.old); // 6
}
