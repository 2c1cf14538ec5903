import assert from "node:assert/strict";
import { toStorageError } from "./fs_errors.ts";
import { StorageError } from "./storage.ts";

async function realWriteError(path: string): Promise<unknown> {
  const file = await Deno.open(path, { write: true });
  try {
    await file.write(new Uint8Array(16));
  } catch (err) {
    return err;
  } finally {
    file.close();
  }
  throw new Error(`writing ${path} unexpectedly succeeded`);
}

Deno.test({
  name: "toStorageError() explains a real ENOSPC with the path and the fix, keeping the cause",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const cause = await realWriteError("/dev/full");
    const err = toStorageError(cause, "write", "/etc/nexo/certs/a/privkey.pem");
    assert.ok(err instanceof StorageError);
    assert.equal(err.code, "ENOSPC");
    assert.equal(err.cause, cause);
    assert.equal(
      err.message,
      'Cannot write "/etc/nexo/certs/a/privkey.pem": the disk is full (free space on the file system that ' +
        "holds it (df -h); nexo keeps its current files and retries)",
    );
  },
});

Deno.test("toStorageError() tells the operator to fix ownership on permission denied", () => {
  const err = toStorageError(
    new Deno.errors.PermissionDenied("Permission denied (os error 13)"),
    "write",
    "/x/k",
  );
  assert.equal(err.code, "EACCES");
  assert.match(err.message, /^Cannot write "\/x\/k": permission denied \(run nexo as the user that owns/);
});

Deno.test("toStorageError() names the missing Deno permission flag", () => {
  const err = toStorageError(new Deno.errors.NotCapable("Requires write access"), "write", "/x/k");
  assert.match(
    err.message,
    /^Cannot write "\/x\/k": Deno's permissions do not allow it \(run nexo with --allow-read/,
  );
});

Deno.test("toStorageError() recognises an OS error that carries only its errno in the message", () => {
  const err = toStorageError(new Error("Read-only file system (os error 30): open '/x/k'"), "write", "/x/k");
  if (Deno.build.os === "linux") {
    assert.equal(err.code, "EROFS");
    assert.match(err.message, /^Cannot write "\/x\/k": the file system is read-only \(remount it read-write/);
  }
});

Deno.test("toStorageError() keeps Deno's message for errors without a known fix", () => {
  const err = toStorageError(new Error("Too many levels of symbolic links"), "read", "/x/k");
  assert.equal(err.message, 'Cannot read "/x/k": Too many levels of symbolic links');
  assert.equal(err.code, undefined);
});
