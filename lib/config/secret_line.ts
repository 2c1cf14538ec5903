// The one-line secret files nexo reads (acme-dns's password, Redis's password): the secret alone on one line,
// as `echo SECRET > FILE` writes it. It reads nothing itself; callers pass the file's text.

/**
 * The secret in a secret file's text, surrounding whitespace trimmed. Throws a TypeError (naming no part of
 * the text) when it is empty or holds blanks: a second line or a "key: value" form is a mistake to show.
 */
export function readSecretLine(text: string): string {
  const secret = text.trim();
  if (secret === "" || /\s/.test(secret)) {
    throw new TypeError("it must hold the secret alone, on one line, without blanks");
  }
  return secret;
}
