// `nexo doctor`'s checks of this machine: can this process bind the listen addresses (and if not, who holds
// them), can it write base_dir and cert_dir, is there disk space, how many files may it open, and is the
// listener handover sysctl on. Deno 2.9.6 lets a program read /proc only with --allow-all, so under nexo's
// narrow flags the checks that need /proc say so and give the shell command instead. It changes nothing.

import { errorMessage } from "../error_message.ts";
import type { Config, ListenAddress } from "../config/types.ts";
import { dirname, join } from "../path.ts";
import { MIGRATE_REQ } from "../server/listen.ts";
import { currentUid } from "../process_user.ts";
import { type Finding, finding } from "./report.ts";
import { formatAddr } from "../ip_address.ts";

const AREA = "machine";

/**
 * Free space below which writing a certificate may fail (`problem`) or soon will (`warning`), in bytes. A
 * certificate with its key and meta is ~10 KiB, but logs and the system share the disk, and a full disk is
 * what turns a renewal into a lost certificate.
 */
const DISK_PROBLEM_BYTES = 16 * 1024 * 1024;
const DISK_WARNING_BYTES = 256 * 1024 * 1024;

/**
 * Open files below which a busy proxy runs out: each proxied connection holds two (client and upstream), so
 * 8192 is ~4,000 connections at once; systemd's default soft limit, 1024, is ~500.
 */
const FD_WARNING = 8192;

/** Where /proc lives; tests point it elsewhere. */
export interface MachineOptions {
  proc?: string;
}

/** Every machine check, in the order the report prints them. */
export async function checkMachine(config: Config, options: MachineOptions = {}): Promise<Finding[]> {
  const proc = options.proc ?? "/proc";
  const findings: Finding[] = [];
  const listeners: Array<[string, ListenAddress | null]> = [
    ["listen", config.listen],
    ["http_listen", config.httpListen],
    ["admin.listen", config.admin?.listen ?? null],
  ];
  for (const [key, address] of listeners) {
    if (address !== null) findings.push(await checkListen(key, address, proc));
  }
  findings.push(await checkWritable("base_dir", config.baseDir));
  if (config.certDir !== config.baseDir) findings.push(await checkWritable("cert_dir", config.certDir));
  findings.push(...await checkKeyModes(config.certDir));
  findings.push(await checkDiskSpace(config.certDir));
  findings.push(await checkFileLimit(proc));
  const migrate = await checkMigrateReq(proc);
  if (migrate !== null) findings.push(migrate);
  return findings;
}

/**
 * Binds `address` for a moment, the way the server will. A port in use is a problem when /proc names a
 * process other than nexo, fine when it is nexo itself (the server is running), a warning when nobody can be
 * named (under nexo's narrow flags /proc is closed).
 */
export async function checkListen(key: string, address: ListenAddress, proc: string): Promise<Finding> {
  const subject = `${key} ${formatAddr(address)}`;
  if (address.port === 0) return finding(AREA, subject, "ok", "port 0: the system picks a free port");
  // As the server binds it: no host is every IPv4 address, except for the admin server, which stays local.
  const hostname = address.hostname || (key === "admin.listen" ? "127.0.0.1" : "0.0.0.0");
  try {
    Deno.listen({ hostname, port: address.port, transport: "tcp" }).close();
    return finding(AREA, subject, "ok", "this process can bind it");
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) return await portInUse(subject, address.port, proc);
    if (error instanceof Deno.errors.PermissionDenied) {
      return {
        area: AREA,
        subject,
        status: "problem",
        message:
          `ports below 1024 need root or the CAP_NET_BIND_SERVICE capability, and this process has neither`,
        fix: `run nexo as root (the systemd unit does), or grant the binary the capability: ` +
          `sudo setcap cap_net_bind_service=+ep "$(command -v nexo)"`,
      };
    }
    if (error instanceof Deno.errors.AddrNotAvailable) {
      return {
        area: AREA,
        subject,
        status: "problem",
        message: `this machine has no address ${address.hostname}`,
        fix:
          `set ${key} to "0.0.0.0:${address.port}" (every address), or to an address \`ip -brief address\` lists`,
      };
    }
    if (error instanceof Deno.errors.NotCapable) {
      return finding(AREA, subject, "skipped", `this process may not listen (${errorMessage(error)})`);
    }
    return { area: AREA, subject, status: "problem", message: `cannot bind it: ${errorMessage(error)}` };
  }
}

async function portInUse(subject: string, port: number, proc: string): Promise<Finding> {
  const holder = await findListener(port, proc);
  if (holder !== null && holder.isNexo) {
    return finding(AREA, subject, "ok", `held by nexo itself (pid ${holder.pid}), which is running`);
  }
  if (holder !== null) {
    return {
      area: AREA,
      subject,
      status: "problem",
      message: `another program holds port ${port}: ${holder.name} (pid ${holder.pid})`,
      fix:
        `stop it (\`systemctl status ${holder.pid}\` names its service, then: sudo systemctl disable --now ` +
        `<service>), or move nexo to another port`,
    };
  }
  return {
    area: AREA,
    subject,
    status: "warning",
    message: `port ${port} is in use; unless that is nexo itself, already running, the server cannot start`,
    fix: `see who holds it with: sudo ss -ltnp 'sport = :${port}' (doctor cannot read /proc under its flags)`,
  };
}

/** A process listening on a TCP port, as /proc shows it. */
export interface PortHolder {
  pid: number;
  /** Its command name (/proc/PID/comm). */
  name: string;
  /** Whether its command line is a nexo server (the binary, or `deno ... main.ts|dist/main.js server`). */
  isNexo: boolean;
}

/**
 * The process listening on TCP `port`, found through /proc/net/tcp{,6} (state 0A is LISTEN; the socket's
 * inode) and the /proc/PID/fd links that point at "socket:[inode]"; null when /proc cannot be read or names
 * nobody (another user's process without root).
 */
export async function findListener(port: number, proc: string): Promise<PortHolder | null> {
  const inodes = new Set<string>();
  for (const table of ["net/tcp", "net/tcp6"]) {
    let text: string;
    try {
      text = await Deno.readTextFile(join(proc, table));
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      const local = fields[1] ?? "";
      if (fields[3] === "0A" && parseInt(local.slice(local.lastIndexOf(":") + 1), 16) === port) {
        inodes.add(fields[9] ?? "");
      }
    }
  }
  if (inodes.size === 0) return null;
  try {
    for await (const entry of Deno.readDir(proc)) {
      if (!/^\d+$/.test(entry.name)) continue;
      const pid = Number(entry.name);
      if (pid === Deno.pid) continue;
      if (await holdsSocket(join(proc, entry.name, "fd"), inodes)) {
        const name = (await readOr(join(proc, entry.name, "comm"), "?")).trim();
        const cmdline = (await readOr(join(proc, entry.name, "cmdline"), "")).split("\0");
        return { pid, name, isNexo: isNexoCommand(cmdline) };
      }
    }
  } catch {
    return null;
  }
  return null;
}

/**
 * Whether a command line runs nexo's server: the compiled `nexo server`, or Deno running it from the sources
 * (main.ts) or the bundle (dist/main.js: the tasks and the installed launcher).
 */
export function isNexoCommand(argv: readonly string[]): boolean {
  const program = argv[0]?.split("/").pop() ?? "";
  const serves = argv.some((arg) => arg === "server" || arg === "serve" || arg === "demo");
  if (program === "nexo") return serves;
  return /^deno/.test(program) && serves && argv.some((arg) => /(^|\/)(main\.ts|dist\/main\.js)$/.test(arg));
}

async function holdsSocket(fdDir: string, inodes: ReadonlySet<string>): Promise<boolean> {
  try {
    for await (const fd of Deno.readDir(fdDir)) {
      const target = await Deno.readLink(join(fdDir, fd.name)).catch(() => "");
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode !== undefined && inodes.has(inode)) return true;
    }
  } catch {
    // another user's process without root, or it exited: not this one
  }
  return false;
}

async function readOr(path: string, fallback: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return fallback;
  }
}

/**
 * Whether nexo can write `dir` (`key` names it in the config): a file created and removed there, or, when
 * `dir` does not exist yet, in the nearest folder above it (nexo creates the rest). Root passes any mode
 * check, so only a real write tells (a read-only mount, a full disk, --allow-write not covering it).
 */
export async function checkWritable(key: string, dir: string): Promise<Finding> {
  const subject = `${key} ${dir}`;
  let target = dir;
  for (;;) {
    const kind = await kindOf(target);
    if (kind === "directory") break;
    if (kind === "other") {
      return {
        area: AREA,
        subject,
        status: "problem",
        message: `${target} is a file, not a folder`,
        fix: `move the file away, or set ${key} to a folder`,
      };
    }
    // "missing": nexo creates it; "hidden": the stat was refused, so the write below tells why.
    if (kind === "hidden" || dirname(target) === target) break;
    target = dirname(target);
  }
  const probe = join(target, `.nexo-doctor-${crypto.randomUUID()}`);
  try {
    await Deno.writeTextFile(probe, "", { createNew: true, mode: 0o600 });
    await Deno.remove(probe);
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) {
      return {
        area: AREA,
        subject,
        status: "problem",
        message: `nexo's permissions do not let it write ${target}, so the server could not either`,
        fix:
          `keep base_dir and cert_dir under the folder nexo may write (/etc/nexo for the compiled binary), ` +
          `or widen --allow-write`,
      };
    }
    return {
      area: AREA,
      subject,
      status: "problem",
      message: `cannot write ${target}: ${errorMessage(error)}`,
      fix: `make ${target} writable by the user nexo runs as (and not on a read-only mount)`,
    };
  }
  return finding(
    AREA,
    subject,
    "ok",
    target === dir
      ? "writable"
      : `does not exist yet; nexo will create it under ${target}, which is writable`,
  );
}

/** What is at `path`: a folder, something else, nothing, or what this process may not look at. */
async function kindOf(path: string): Promise<"directory" | "other" | "missing" | "hidden"> {
  try {
    return (await Deno.stat(path)).isDirectory ? "directory" : "other";
  } catch (error) {
    // Under a file, a path is "not a directory": missing too, and the climb finds the file.
    const missing = error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory;
    return missing ? "missing" : "hidden";
  }
}

/**
 * Private keys under `certDir` that other users can read (nexo writes them 0600; a copy or a restore may not
 * have), and a cert_dir others may write (anyone could swap a certificate).
 */
export async function checkKeyModes(certDir: string): Promise<Finding[]> {
  const findings: Finding[] = [];
  let dirMode: number | null;
  try {
    dirMode = (await Deno.stat(certDir)).mode;
  } catch {
    return findings; // not created yet: checkWritable reports it
  }
  if (dirMode !== null && (dirMode & 0o022) !== 0) {
    findings.push({
      area: AREA,
      subject: `cert_dir ${certDir}`,
      status: "warning",
      message: `other users may write it (mode ${(dirMode & 0o777).toString(8)}) and so swap a certificate`,
      fix: `chmod 700 ${certDir}`,
    });
  }
  const exposed: string[] = [];
  try {
    for await (const entry of Deno.readDir(certDir)) {
      if (!entry.isDirectory) continue;
      const key = join(certDir, entry.name, "privkey.pem");
      const mode = await Deno.stat(key).then((info) => info.mode).catch(() => null);
      if (mode !== null && (mode & 0o077) !== 0) exposed.push(key);
    }
  } catch (error) {
    findings.push(finding(AREA, `cert_dir ${certDir}`, "skipped", `cannot list it: ${errorMessage(error)}`));
    return findings;
  }
  if (exposed.length > 0) {
    findings.push({
      area: AREA,
      subject: `private keys in ${certDir}`,
      status: "warning",
      message: `${exposed.length} private key file(s) other users can read: ${
        exposed.slice(0, 3).join(", ")
      }`,
      fix: `chmod 600 ${exposed.length === 1 ? exposed[0] : `${certDir}/*/privkey.pem`}`,
    });
  }
  return findings;
}

/** Free space on the file system that holds `dir` (or the folder it will be created in). */
export async function checkDiskSpace(dir: string): Promise<Finding> {
  let target = dir;
  while (await kindOf(target) === "missing" && dirname(target) !== target) target = dirname(target);
  const subject = `disk space at ${target}`;
  let free: number;
  try {
    free = await (await import("./disk_space.ts")).freeBytes(target);
  } catch (error) {
    return finding(AREA, subject, "skipped", `cannot read the file system's size: ${errorMessage(error)}`);
  }
  const shown = `${(free / 1024 / 1024).toFixed(0)} MiB free`;
  if (free < DISK_PROBLEM_BYTES) {
    return {
      area: AREA,
      subject,
      status: "problem",
      message: `${shown}: a certificate write may fail`,
      fix: "free disk space (old logs: journalctl --vacuum-size=100M; apt-get clean)",
    };
  }
  if (free < DISK_WARNING_BYTES) {
    return {
      area: AREA,
      subject,
      status: "warning",
      message: `${shown}: little room left`,
      fix: "free disk space before it runs out (journalctl --vacuum-size=100M; apt-get clean)",
    };
  }
  return finding(AREA, subject, "ok", shown);
}

/** The soft limit on open files (/proc/self/limits; Deno raises its soft limit to the hard one at start). */
export async function checkFileLimit(proc: string): Promise<Finding> {
  const subject = "open files limit";
  let text: string;
  try {
    text = await Deno.readTextFile(join(proc, "self/limits"));
  } catch (error) {
    return procSkipped(
      subject,
      error,
      `check it on the running server: grep 'open files' /proc/$(pidof nexo)/limits (want ${FD_WARNING}+)`,
    );
  }
  const soft = /^Max open files\s+(\S+)/m.exec(text)?.[1];
  if (soft === undefined) return finding(AREA, subject, "skipped", 'no "Max open files" line in limits');
  if (soft === "unlimited" || Number(soft) >= FD_WARNING) {
    return finding(AREA, subject, "ok", `${soft}: about ${connections(soft)} connections at once`);
  }
  return {
    area: AREA,
    subject,
    status: "warning",
    message: `${soft}: about ${connections(soft)} proxied connections at once, then new ones fail`,
    fix: "raise it: LimitNOFILE=65536 in the systemd unit, or `ulimit -n 65536` before nexo starts",
  };
}

function connections(soft: string): string {
  return soft === "unlimited" ? "unlimited" : String(Math.floor(Number(soft) / 2));
}

/**
 * net.ipv4.tcp_migrate_req: with it on, a certificate swap moves connections queued on the old listener to
 * the new one instead of resetting them. Null where it does not exist (not Linux 5.14+): nothing to say.
 */
export async function checkMigrateReq(proc: string): Promise<Finding | null> {
  const subject = "net.ipv4.tcp_migrate_req";
  const path = proc === "/proc" ? MIGRATE_REQ : join(proc, "sys/net/ipv4/tcp_migrate_req");
  let value: string;
  try {
    value = (await Deno.readTextFile(path)).trim();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    return procSkipped(
      subject,
      error,
      "check that `sysctl net.ipv4.tcp_migrate_req` says 1 (nexo turns it on itself when it runs as root)",
    );
  }
  if (value === "1") return finding(AREA, subject, "ok", "on: certificate swaps reset no connection");
  if (currentUid() === 0) {
    return finding(AREA, subject, "ok", "off, and nexo turns it on at start (it runs as root)");
  }
  return {
    area: AREA,
    subject,
    status: "warning",
    message: "off: a certificate swap may reset a connection being accepted",
    fix: "sudo sysctl -w net.ipv4.tcp_migrate_req=1 (and add it to /etc/sysctl.d/ to keep it)",
  };
}

/** A check that needed /proc and could not read it: why, and the shell command that tells instead. */
function procSkipped(subject: string, error: unknown, fix: string): Finding {
  const message = error instanceof Deno.errors.NotCapable
    ? "Deno lets a program read /proc only with --allow-all, which nexo does not run with"
    : `cannot read /proc: ${errorMessage(error)}`;
  return { area: AREA, subject, status: "skipped", message, fix };
}
