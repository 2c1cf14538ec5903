// Whether a file that holds a secret (the config with the Cloudflare API token or GitHub's client secret
// written inline, an upstream client certificate's key) can be read by other users of the machine: its mode,
// and the chmod that fixes it. It reports; it never changes a mode (nexo never writes these files) and never
// reads or returns the secret itself. Logging is the caller's.

import type { Config } from "./types.ts";
import { dnsProviders } from "./dns_zones.ts";

/** A file holding a secret that its group or other users may read. */
export interface ExposedSecretFile {
  /** Absolute path, as the config was loaded. */
  file: string;
  /** Permission bits (`0o644`). */
  mode: number;
  /** Which setting's secret the file holds, by key path: "cloudflare.api_token". Never the secret. */
  secret: string;
  /** The command that fixes it: `chmod 600 /etc/nexo/config.yaml`. */
  fix: string;
}

/** Group-read and other-read: anyone but the owner (and root) can read the token. */
const READABLE_BY_OTHERS = 0o044;

/**
 * Returns the files of `config` that hold a secret and are readable by group or others (mode & 0o044): the
 * config file itself when it has a `cloudflare:` block or `auth.github`, whose secrets are written inline
 * (one entry per secret), and each `upstream_tls.client_key_file`. Called at start and on every reload (a
 * reload may add a secret). A file that vanished since it was loaded (an editor's rename) or a platform
 * without Unix modes gives nothing; other errors are thrown.
 */
export async function findExposedSecretFiles(config: Config): Promise<ExposedSecretFile[]> {
  const held: Array<{ file: string; secret: string }> = [
    ...(dnsProviders(config.dns).some((p) => p.provider === "cloudflare") ? ["cloudflare.api_token"] : []),
    ...((config.auth?.github ?? null) === null ? [] : ["auth.github.client_secret"]),
    ...([config.acme, ...config.acme.fallbacks].some((ca) => ca.eab !== null) ? ["acme.eab.hmac_key"] : []),
  ].map((secret) => ({ file: config.file, secret }));
  for (const provider of dnsProviders(config.dns)) {
    if (provider.provider === "rfc2136") {
      held.push({ file: provider.rfc2136.tsigSecretFile, secret: "dns.rfc2136.tsig_secret_file" });
    }
    if (provider.provider === "acme-dns") {
      held.push({ file: provider.acmeDns.passwordFile, secret: "dns.acme_dns.password_file" });
    }
  }
  for (const route of config.routes) {
    const key = route.kind === "proxy" ? route.upstreamTls?.clientKeyFile ?? null : null;
    if (key !== null) {
      held.push({ file: key, secret: `proxies."${route.host}".upstream_tls.client_key_file` });
    }
  }
  const exposed: ExposedSecretFile[] = [];
  for (const { file, secret } of held) {
    const mode = await modeOf(file);
    if (mode === null || (mode & READABLE_BY_OTHERS) === 0) continue;
    exposed.push({ file, mode, secret, fix: `chmod 600 ${shellQuote(file)}` });
  }
  return exposed;
}

/** The permission bits of `file` (a symlink's target: the mode that matters), or null when unknown. */
async function modeOf(file: string): Promise<number | null> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(file);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotCapable) return null;
    throw error;
  }
  return info.mode === null ? null : info.mode & 0o7777;
}

/** "0644": a mode as `ls -l` users and chmod write it. */
export function formatMode(mode: number): string {
  return `0${(mode & 0o7777).toString(8).padStart(3, "0")}`;
}

/** A path as one shell word: bare when it is plainly safe, else single-quoted. */
function shellQuote(path: string): string {
  return /^[\w@%+=:,./-]+$/.test(path) ? path : `'${path.replaceAll("'", `'\\''`)}'`;
}
