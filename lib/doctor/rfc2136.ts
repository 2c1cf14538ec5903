// `nexo doctor`'s RFC 2136 checks: the TSIG key file read as the server reads it, every certificate name's
// zone found at the server, an empty signed update per zone (the server checks the key and its right to
// update, and changes nothing), and with --write-test a record written, seen and deleted.

import { errorMessage } from "../error_message.ts";
import type { Config, Rfc2136Config } from "../config/types.ts";
import { parseTsigSecret } from "../config/tsig_secret.ts";
import { challengeRecordName } from "../dns/provider.ts";
import { Rfc2136DnsProvider } from "../dns/rfc2136.ts";
import { type Finding, finding } from "./report.ts";
import { writeTest } from "./record_probe.ts";
import { formatAddr } from "../ip_address.ts";

const AREA = "dns provider";

/** Runs the checks with one RFC 2136 provider of the config, for the names it serves. */
export async function checkRfc2136(
  config: Config,
  settings: Rfc2136Config,
  options: { names: readonly string[]; writeTest: boolean },
): Promise<Finding[]> {
  const server = formatAddr(settings.server);
  let secret: Uint8Array;
  try {
    secret = parseTsigSecret(await Deno.readTextFile(settings.tsigSecretFile)).secret;
  } catch (error) {
    return [{
      area: AREA,
      subject: "dns.rfc2136.tsig_secret_file",
      status: "problem",
      message: `cannot use ${settings.tsigSecretFile}: ${errorMessage(error)}`,
    }];
  }
  const provider = new Rfc2136DnsProvider({
    server: settings.server,
    key: { name: settings.tsigKey, algorithm: settings.tsigAlgorithm, secret },
    zone: settings.zone,
  });
  const findings: Finding[] = [];
  const zones = new Map<string, string>();
  for (const name of options.names) {
    try {
      const zone = await provider.findZone(challengeRecordName(name));
      if (!zones.has(zone)) zones.set(zone, name);
    } catch (error) {
      findings.push({ area: AREA, subject: name, status: "problem", message: errorMessage(error) });
    }
  }
  for (const [zone, name] of zones) {
    try {
      await provider.verify([challengeRecordName(name)]);
      findings.push(
        finding(AREA, `zone ${zone}`, "ok", `${server} accepts updates signed with "${settings.tsigKey}"`),
      );
    } catch (error) {
      findings.push({ area: AREA, subject: `zone ${zone}`, status: "problem", message: errorMessage(error) });
      continue;
    }
    findings.push(
      options.writeTest
        ? await writeTest(provider, {
          area: AREA,
          subject: `DNS edit in ${zone}`,
          name,
          zone,
          resolvers: config.acme.dnsResolvers.length > 0 ? config.acme.dnsResolvers : [server],
          timeoutMs: config.acme.propagationTimeoutMs,
        })
        : finding(
          AREA,
          `DNS edit in ${zone}`,
          "skipped",
          "an empty update proves the key; run `nexo doctor --write-test` to write and delete a test TXT record",
        ),
    );
  }
  return findings;
}
