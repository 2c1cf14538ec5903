// The files the DNS providers under `dns:` depend on, checked when the config is loaded so a missing or wrong
// file is a config error at its line rather than a failed renewal weeks later: the TSIG key (tsig_secret.ts),
// the exec hook (a file nexo may run) and acme-dns's password file. It reads them; it keeps nothing.

import type { ConfigIssue } from "./errors.ts";
import type { AcmeDnsConfig, DnsConfig, ExecDnsConfig } from "./types.ts";
import { dnsProviders } from "./dns_zones.ts";
import { checkTsigSecretFile } from "./tsig_secret.ts";
import { unreadableReason } from "./unreadable.ts";
import { readSecretLine } from "./secret_line.ts";

/** Every problem with the files `dns` names; [] when all are usable. */
export async function checkDnsFiles(dns: DnsConfig): Promise<ConfigIssue[]> {
  const issues: ConfigIssue[] = [];
  for (const provider of dnsProviders(dns)) {
    if (provider.provider === "rfc2136") issues.push(...await checkTsigSecretFile(provider.rfc2136));
    if (provider.provider === "exec") issues.push(...await checkExecProgram(provider.exec));
    if (provider.provider === "acme-dns") issues.push(...await checkPasswordFile(provider.acmeDns));
  }
  return issues;
}

/** The hook must be a regular file with an execute bit: anything else fails at the first renewal. */
async function checkExecProgram(exec: ExecDnsConfig): Promise<ConfigIssue[]> {
  const program = exec.command[0]!;
  const issue = (
    message: string,
  ) => [{ ...exec.position, message: `dns.exec.command: ${program} ${message}` }];
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(program);
  } catch (error) {
    const reason = unreadableReason(error, {
      missing: "check the path",
      kind: "the hook program",
      noun: "the hook",
    });
    if (reason === null) throw error;
    return issue(`cannot be used: ${reason}`);
  }
  if (!info.isFile) return issue("is not a file: give the path of the hook program");
  if (info.mode !== null && (info.mode & 0o111) === 0) {
    return issue(`is not executable: chmod +x ${program}`);
  }
  return [];
}

/** acme-dns's password: the file must be readable and hold one non-empty line. */
async function checkPasswordFile(acmeDns: AcmeDnsConfig): Promise<ConfigIssue[]> {
  const where = "dns.acme_dns.password_file";
  try {
    readSecretLine(await Deno.readTextFile(acmeDns.passwordFile));
    return [];
  } catch (error) {
    const reason = unreadableReason(error, {
      missing: "write the password acme-dns's /register gave into it",
      kind: "a password file",
      noun: "the file",
    }) ?? (error instanceof TypeError ? error.message : null);
    if (reason === null) throw error;
    return [{ ...acmeDns.position, message: `${where}: cannot use ${acmeDns.passwordFile}: ${reason}` }];
  }
}
