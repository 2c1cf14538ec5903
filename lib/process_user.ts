// Who nexo runs as, read only where its permissions allow (no prompt, no error): the config path and
// `nexo trust` depend on it.

/** This process's user id, or null where it is unknown (no sys permission, or not a Unix). */
export function currentUid(): number | null {
  return Deno.permissions.querySync({ name: "sys", kind: "uid" }).state === "granted" ? Deno.uid() : null;
}

/** $HOME, or /root where it is unset (as under some service managers). */
export function homeDir(): string {
  return Deno.env.get("HOME") ?? "/root";
}
