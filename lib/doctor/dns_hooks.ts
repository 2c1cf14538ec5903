// `nexo doctor`'s checks of the providers that have no account to check, exec and acme-dns: the exec hook is
// named (the config load already proved it is an executable file) and acme-dns's API is asked whether it is
// up and whether each name's `_acme-challenge` is delegated to it; with --write-test, a record is written,
// seen and deleted through the provider as the server would.

import { errorMessage } from "../error_message.ts";
import type { AcmeDnsConfig, Config, ExecDnsConfig } from "../config/types.ts";
import { readSecretLine } from "../config/secret_line.ts";
import type { DnsProvider } from "../dns/provider.ts";
import { challengeRecordName } from "../dns/provider.ts";
import { type Finding, finding } from "./report.ts";
import { writeTest } from "./record_probe.ts";

const AREA = "dns provider";

/** Runs the checks with one exec or acme-dns provider of the config, for the names it serves. */
export async function checkDnsHook(
  config: Config,
  provider: { provider: "exec"; exec: ExecDnsConfig } | { provider: "acme-dns"; acmeDns: AcmeDnsConfig },
  options: { names: readonly string[]; writeTest: boolean },
): Promise<Finding[]> {
  const built = provider.provider === "exec"
    ? await execProvider(provider.exec, config)
    : await acmeDnsProvider(provider.acmeDns, config);
  if ("finding" in built) return [built.finding];
  const findings: Finding[] = [];
  try {
    await built.provider.verify(options.names.map(challengeRecordName));
    findings.push(finding(AREA, built.subject, "ok", built.ready));
  } catch (error) {
    return [{ area: AREA, subject: built.subject, status: "problem", message: errorMessage(error) }];
  }
  const [name] = options.names;
  if (name === undefined) return findings;
  if (!options.writeTest) {
    findings.push(finding(
      AREA,
      `DNS edit for ${name}`,
      "skipped",
      `run \`nexo doctor --write-test\` to write and delete a test TXT record through ${built.subject}`,
    ));
    return findings;
  }
  const zone = await built.provider.findZone(challengeRecordName(name)).catch(() => name);
  findings.push(
    await writeTest(built.provider, {
      area: AREA,
      subject: `DNS edit for ${name}`,
      name,
      zone,
      resolvers: config.acme.dnsResolvers,
      timeoutMs: config.acme.propagationTimeoutMs,
    }),
  );
  return findings;
}

type Built = { provider: DnsProvider; subject: string; ready: string } | { finding: Finding };

async function execProvider(exec: ExecDnsConfig, config: Config): Promise<Built> {
  const { ExecDnsProvider } = await import("../dns/exec.ts");
  const { lookupTxt } = await import("../dns/lookups.ts");
  const resolvers = config.acme.dnsResolvers;
  return {
    provider: new ExecDnsProvider({
      command: exec.command,
      timeoutMs: exec.timeoutMs,
      zone: exec.zone,
      ...(resolvers.length > 0 ? { lookupTxt: (fqdn: string) => lookupTxt(fqdn, resolvers) } : {}),
    }),
    subject: `hook ${exec.command[0]}`,
    ready: `an executable file; nexo runs it as "${exec.command.join(" ")} present|cleanup NAME. VALUE"`,
  };
}

async function acmeDnsProvider(acmeDns: AcmeDnsConfig, config: Config): Promise<Built> {
  const subject = `acme-dns at ${acmeDns.api}`;
  let password: string;
  try {
    password = readSecretLine(await Deno.readTextFile(acmeDns.passwordFile));
  } catch (error) {
    return {
      finding: {
        area: AREA,
        subject: "dns.acme_dns.password_file",
        status: "problem",
        message: `cannot use ${acmeDns.passwordFile}: ${errorMessage(error)}`,
      },
    };
  }
  const { AcmeDnsProvider } = await import("../dns/acme_dns.ts");
  const { resolveDnsAt } = await import("../dns/lookups.ts");
  return {
    provider: new AcmeDnsProvider({
      api: acmeDns.api,
      username: acmeDns.username,
      password,
      subdomain: acmeDns.subdomain,
      fulldomain: acmeDns.fulldomain,
      // Each name's _acme-challenge must be a CNAME to the account: asked of acme.dns_resolvers' first, else
      // of the machine's resolver.
      resolveDns: resolveDnsAt(config.acme.dnsResolvers),
    }),
    subject,
    ready: "the API answers and every name's _acme-challenge is delegated to the account",
  };
}
