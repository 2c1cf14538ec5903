// Why a file the config depends on (the config itself, a PEM file it names) cannot be read, in words that
// say what to do; shared so that every such file is explained alike.

/** What differs between the files: what to create when it is missing, and what kind of file it must be. */
export interface UnreadableWording {
  /** "create it, or give the path of an existing config file" */
  missing: string;
  /** "a YAML file" */
  kind: string;
  /** "the config" */
  noun: string;
}

/** The reason for a read that failed with `error`, or null for an error that is not about reading the file. */
export function unreadableReason(error: unknown, wording: UnreadableWording): string | null {
  if (error instanceof Deno.errors.NotFound) return `it does not exist (${wording.missing})`;
  if (error instanceof Deno.errors.IsADirectory) {
    return `it is a directory (give the path of ${wording.kind})`;
  }
  if (error instanceof Deno.errors.PermissionDenied) {
    return "permission denied (make it readable by the user nexo runs as)";
  }
  if (error instanceof Deno.errors.NotCapable) {
    return "this nexo may not read it (the compiled binary and the installed launcher read only /etc/nexo: " +
      `put ${wording.noun} there, or run from source with --allow-read for its folder)`;
  }
  return null;
}
