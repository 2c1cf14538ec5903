// The secret behind GitHub sign-in's signed tokens (signed_token.ts): 32 random bytes in
// `base_dir/auth/session.key` (mode 0600, in a 0700 directory), made on first use and kept, so sessions
// survive restarts and reloads. Deleting the file and restarting signs everyone out. When the file cannot be
// written, a key held in memory serves until the next restart (the caller logs that).

import { errorMessage } from "../error_message.ts";
import { join } from "../path.ts";
import { syncDir, writeAndRename } from "../storage/atomic_write.ts";

const KEY_BYTES = 32;

export interface SessionKey {
  secret: Uint8Array<ArrayBuffer>;
  /** Where it is kept, or null when it lives only in memory. */
  path: string | null;
  /** Why it could not be kept, when `path` is null. */
  problem: string | null;
}

/** The key in `baseDir`, made there when missing. Throws when the file exists but is not a key nexo wrote. */
export async function loadSessionKey(baseDir: string): Promise<SessionKey> {
  const dir = join(baseDir, "auth");
  const path = join(dir, "session.key");
  try {
    return { secret: parseKey(await Deno.readTextFile(path), path), path, problem: null };
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  const secret = crypto.getRandomValues(new Uint8Array(KEY_BYTES));
  try {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    await writeAndRename(path, new TextEncoder().encode(`${secret.toBase64()}\n`), 0o600);
    await syncDir(dir);
    return { secret, path, problem: null };
  } catch (error) {
    return { secret, path: null, problem: `cannot write ${path}: ${errorMessage(error)}` };
  }
}

function parseKey(text: string, path: string): Uint8Array<ArrayBuffer> {
  try {
    const secret = Uint8Array.fromBase64(text.trim());
    if (secret.length >= KEY_BYTES) return secret;
  } catch {
    // reported below
  }
  throw new Error(
    `${path} is not a session key nexo wrote (${KEY_BYTES} random bytes in base64); delete it and nexo ` +
      `makes a new one at start (everyone signed in with GitHub then signs in again)`,
  );
}
