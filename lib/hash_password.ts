// `nexo hash-password`: a bcrypt hash for a `basic_auth` user. The password comes on stdin: typed at a
// terminal (not echoed, asked twice) or piped (`printf %s "$PW" | nexo hash-password`), so it never appears in
// a process list or the shell's history.

import { BCRYPT_MAX_PASSWORD_BYTES, bcryptHash } from "./auth/bcrypt.ts";

const MIN_COST = 10;
const MAX_COST = 14;

/** The hash to print (exit 0), or the reason there is none (exit 1). */
export async function hashPasswordCommand(costText: string): Promise<{ code: number; text: string }> {
  const cost = Number(costText);
  if (!/^\d+$/.test(costText) || cost < MIN_COST || cost > MAX_COST) {
    return {
      code: 1,
      text: `error: --cost must be a whole number from ${MIN_COST} to ${MAX_COST}, got '${costText}'\n`,
    };
  }
  const password = Deno.stdin.isTerminal() ? await promptTwice() : await readPiped();
  if (password === null) return { code: 1, text: "error: the two passwords differ; nothing was hashed\n" };
  if (password.length === 0) return { code: 1, text: "error: the password is empty\n" };
  const bytes = new TextEncoder().encode(password).length;
  const note = bytes > BCRYPT_MAX_PASSWORD_BYTES
    ? `# note: bcrypt uses only the first ${BCRYPT_MAX_PASSWORD_BYTES} bytes of this ${bytes}-byte password\n`
    : "";
  return { code: 0, text: `${note}${await bcryptHash(password, cost, { sliceMs: Infinity })}\n` };
}

/** Piped input: all of it, without one trailing newline (as `echo` adds). */
async function readPiped(): Promise<string> {
  const text = await new Response(Deno.stdin.readable).text();
  return text.replace(/\r?\n$/, "");
}

/** A terminal: the password twice, not echoed; null when the two differ. */
async function promptTwice(): Promise<string | null> {
  const first = await promptHidden("Password: ");
  const second = await promptHidden("Again: ");
  return first === second ? first : null;
}

async function promptHidden(prompt: string): Promise<string> {
  const encoder = new TextEncoder();
  await Deno.stderr.write(encoder.encode(prompt));
  Deno.stdin.setRaw(true);
  const bytes: number[] = [];
  const buffer = new Uint8Array(64);
  try {
    for (;;) {
      const n = await Deno.stdin.read(buffer);
      if (n === null) break;
      let done = false;
      for (const byte of buffer.subarray(0, n)) {
        if (byte === 0x0d || byte === 0x0a) done = true;
        else if (byte === 0x03) throw new Error("interrupted");
        else if (byte === 0x7f || byte === 0x08) bytes.pop();
        else if (!done) bytes.push(byte);
      }
      if (done) break;
    }
  } finally {
    Deno.stdin.setRaw(false);
    await Deno.stderr.write(encoder.encode("\n"));
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}
