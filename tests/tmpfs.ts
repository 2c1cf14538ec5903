// A file system of a test's own for disk faults: a small tmpfs mounted on a temp directory (root on Linux
// only), filled to the last page on request, and always unmounted. It knows nothing of nexo.

import assert from "node:assert/strict";
import { join } from "node:path";

/** tmpfs allocates file data in pages of this many bytes (x86-64 and arm64 Linux). */
export const PAGE_BYTES = 4096;

/** Runs `command`, resolving its stdout; throws with its stderr when it fails. */
export async function runOrThrow(command: string, args: string[]): Promise<string> {
  const output = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" }).output();
  if (!output.success) {
    throw new Error(`${command} ${args.join(" ")} failed: ${new TextDecoder().decode(output.stderr)}`);
  }
  return new TextDecoder().decode(output.stdout);
}

/** Mounts a tmpfs with `options` on `dir`; false when this is not Linux, not root, or mount fails. */
export async function tryMountTmpfs(dir: string, options: string): Promise<boolean> {
  if (Deno.build.os !== "linux" || Deno.uid() !== 0) return false;
  const output = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", options, "nexo-test", dir],
    stdout: "null",
    stderr: "null",
  }).output().catch(() => undefined);
  return output?.success === true;
}

/**
 * Runs `fn` with a fresh tmpfs of `sizeKib` KiB mounted on a temp directory, and always unmounts it (lazily
 * when still busy, so a failing test never leaves a mount behind). Throws when it cannot mount.
 */
export async function withTmpfs(sizeKib: number, fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "nexo-tmpfs-" });
  try {
    if (!(await tryMountTmpfs(dir, `size=${sizeKib}k,mode=0700`))) {
      throw new Error(`Cannot mount a tmpfs on "${dir}": these tests need root on Linux`);
    }
    try {
      await fn(dir);
    } finally {
      await runOrThrow("umount", [dir]).catch(() => runOrThrow("umount", ["-l", dir]));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Whether this process may mount a tmpfs (root on Linux), found by mounting a tiny one. */
export async function canMountTmpfs(): Promise<boolean> {
  return await withTmpfs(64, () => Promise.resolve()).then(() => true, () => false);
}

/** Free 4 KiB blocks on the file system holding `dir` (statfs f_bavail, via coreutils' stat). */
export async function freePages(dir: string): Promise<number> {
  const [available, size] = (await runOrThrow("stat", ["-f", "--format=%a %S", dir])).trim().split(" ");
  return Number(available) * Number(size) / PAGE_BYTES;
}

/**
 * Fills the file system holding `dir` with one file, leaving exactly `pages` pages free, and returns the
 * file's path (delete it to free the space).
 */
export async function fillLeaving(dir: string, pages: number): Promise<string> {
  const path = join(dir, "filler");
  const file = await Deno.open(path, { write: true, createNew: true });
  try {
    const chunk = new Uint8Array(64 * 1024);
    let size = 0;
    for (;;) {
      try {
        size += await file.write(chunk);
      } catch (error) {
        if ((error as { code?: string }).code !== "ENOSPC") throw error;
        break;
      }
    }
    await file.truncate(Math.floor(size / PAGE_BYTES) * PAGE_BYTES - pages * PAGE_BYTES);
  } finally {
    file.close();
  }
  assert.equal(await freePages(dir), pages, "the disk is full but for the pages asked for");
  return path;
}
