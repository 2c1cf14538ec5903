// The ACME worker's Deno permissions, derived from its settings: network only to the CAs, the DNS providers'
// APIs and servers and the DNS servers it polls; reading base_dir and cert_dir, writing only its own folders;
// running only the exec DNS hook. Also which `--allow-*` flags this process lacks to grant them.

import { parseResolver } from "../dns/name_servers.ts";
import { dnsProviders } from "../config/dns_zones.ts";
import { formatAddr } from "../ip_address.ts";
import { parseRedisUrl } from "../storage/redis_url.ts";
import { join } from "../path.ts";
import { ACCOUNTS_DIR } from "../storage/acme_accounts.ts";
import { LOCK_DIR } from "../storage/file_storage.ts";
import type { WorkerSettings } from "./messages.ts";

/** A worker's Deno permissions, as `new Worker(..., { deno: { permissions } })` takes them. */
export interface WorkerPermissions {
  net: string[];
  read: string[];
  /** Nothing with a shared store (`storage:`): the worker then keeps no file. */
  write: string[] | false;
  env: false;
  /** Exactly the exec DNS hooks, or nothing. */
  run: string[] | false;
  ffi: false;
  sys: false;
  import: false;
}

/**
 * The worker's permissions: network only to the ACME server, the DNS APIs and the DNS servers it polls;
 * files only under base_dir and cert_dir; running only the exec DNS hook, when one is
 * configured; nothing else (no env, ffi).
 */
export function workerPermissions(settings: WorkerSettings): WorkerPermissions {
  const net = new Set<string>(
    [settings.directoryUrl, ...settings.fallbacks.map((f) => f.directoryUrl)].map(hostPort),
  );
  const run: string[] = [];
  for (const provider of dnsProviders(settings.dns)) {
    if (provider.provider === "cloudflare") net.add(hostPort(provider.apiBase));
    if (provider.provider === "rfc2136") net.add(formatAddr(provider.server));
    if (provider.provider === "acme-dns") net.add(hostPort(provider.api));
    // The exec hook, and only it: the worker may run no other program.
    if (provider.provider === "exec") run.push(provider.command[0]!);
  }
  // The shared store, and only its address: Redis answers on one port.
  if (settings.storage !== null) net.add(formatAddr(parseRedisUrl(settings.storage.url)));
  for (const resolver of settings.dnsResolvers) {
    const { host, port } = parseResolver(resolver);
    net.add(formatAddr({ hostname: host, port }));
  }
  return {
    net: [...net],
    read: [settings.baseDir, settings.certDir],
    // Its own folders only (ACME accounts, locks, certificates), not base_dir itself: the worker cannot
    // rewrite the config, nor the exec hook it may run (Deno refuses a worker write access to a program it
    // may run, since that is running anything).
    write: settings.storage !== null
      ? false
      : [join(settings.baseDir, ACCOUNTS_DIR), join(settings.baseDir, LOCK_DIR), settings.certDir],
    env: false,
    run: run.length === 0 ? false : run,
    ffi: false,
    // fetch verifies the ACME server against Deno's root store (and acme.ca_cert): no system information.
    sys: false,
    import: false,
  };
}

/** The `--allow-*` flags this process lacks for `permissions` (as workerPermissions() returns them). */
export function missingPermissionFlags(permissions: WorkerPermissions): string[] {
  const missing: string[] = [];
  const granted = (descriptor: Deno.PermissionDescriptor) =>
    Deno.permissions.querySync(descriptor).state === "granted";
  const hosts = permissions.net.filter((host) => !granted({ name: "net", host }));
  if (hosts.length > 0) missing.push(`--allow-net=${hosts.join(",")}`);
  for (const name of ["read", "write"] as const) {
    const paths = (permissions[name] || []).filter((path) => !granted({ name, path }));
    if (paths.length > 0) missing.push(`--allow-${name}=${paths.join(",")}`);
  }
  const programs = (permissions.run || []).filter((command) => !granted({ name: "run", command }));
  if (programs.length > 0) missing.push(`--allow-run=${programs.join(",")}`);
  return missing;
}

function hostPort(url: string): string {
  const parsed = new URL(url);
  const port = parsed.port || (parsed.protocol === "https:" ? "443" : "80");
  return `${parsed.hostname}:${port}`;
}

/**
 * `workerPermissions(settings)`, after checking Deno will grant them: throws naming the missing `--allow-*`
 * flags (Deno's own "Can't escalate parent thread permissions" names none), or an exec hook inside a folder
 * the worker writes.
 */
export function checkedWorkerPermissions(settings: WorkerSettings): WorkerPermissions {
  const permissions = workerPermissions(settings);
  const missing = missingPermissionFlags(permissions);
  if (missing.length > 0) {
    throw new Error(
      `nexo runs without permissions its ACME worker needs: run it with ${missing.join(" ")} ` +
        "(the compiled binary, deno task start and the README's commands have them)",
    );
  }
  for (const program of permissions.run || []) {
    const dir = (permissions.write || []).find((dir) => program === dir || program.startsWith(`${dir}/`));
    if (dir !== undefined) {
      throw new Error(
        `dns.exec.command: ${program} is inside ${dir}, which the ACME worker writes to; a worker that may ` +
          `rewrite the program it runs could run anything, so Deno refuses it: move the hook (like ` +
          `/etc/nexo/dns-hook)`,
      );
    }
  }
  return permissions;
}
