// doctor's write test, for any DnsProvider: a TXT record created where a DNS-01 challenge of a name would
// go, waited for at the name servers nexo checks (timed), and deleted, always. Only with --write-test.

import { errorMessage } from "../error_message.ts";
import { waitForTxt } from "../dns/propagation.ts";
import {
  challengeRecordName,
  type DnsProvider,
  normalizeDnsName,
  providerCapabilities,
  providerRecordName,
} from "../dns/provider.ts";
import { type Finding, finding } from "./report.ts";

export interface WriteTestOptions {
  area: string;
  subject: string;
  /** The certificate name whose challenge record is tried. */
  name: string;
  zone: string;
  /** Where to look for the record (`acme.dns_resolvers`, or what the server would use); [] = authoritative. */
  resolvers: readonly string[];
  timeoutMs: number;
}

/** Creates, waits for and deletes one test record; a finding for the whole round trip. */
export async function writeTest(provider: DnsProvider, options: WriteTestOptions): Promise<Finding> {
  const { area, subject } = options;
  const fqdn = normalizeDnsName(challengeRecordName(options.name));
  // The shape of a real DNS-01 value (43 base64url characters, RFC 8555 §8.4): acme-dns accepts nothing else.
  const value = crypto.getRandomValues(new Uint8Array(32)).toBase64({
    alphabet: "base64url",
    omitPadding: true,
  });
  let handle;
  try {
    handle = await provider.createTxtRecord(fqdn, value);
  } catch (error) {
    return {
      area,
      subject,
      status: "problem",
      message: `cannot create a TXT record: ${errorMessage(error)}`,
    };
  }
  const started = Date.now();
  let seen: Finding;
  try {
    const record = providerRecordName(provider, fqdn);
    await waitForTxt(record, value, {
      resolvers: options.resolvers,
      // Where the record lives elsewhere (acme-dns), that name's own zone holds it.
      ...(record === fqdn ? { zone: options.zone } : {}),
      timeoutMs: options.timeoutMs,
      intervalMs: 1_000,
    });
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    seen = finding(
      area,
      subject,
      "ok",
      `test TXT record ${fqdn} created, seen by the name servers in ${seconds} s`,
    );
  } catch (error) {
    seen = {
      area,
      subject,
      status: "problem",
      message: `test TXT record ${fqdn} created but not seen: ${errorMessage(error)}`,
      fix: "raise acme.propagation_timeout, or check acme.dns_resolvers reach the zone's servers",
    };
  }
  try {
    await provider.deleteTxtRecord(handle);
  } catch (error) {
    const cleanup = `delete the TXT record ${fqdn} with the value ${value} at the DNS provider`;
    return {
      area,
      subject,
      status: seen.status === "problem" ? "problem" : "warning",
      message: `${seen.message}; deleting it failed: ${errorMessage(error)}`,
      fix: seen.fix === undefined ? cleanup : `${seen.fix}; and ${cleanup}`,
    };
  }
  const deleted = providerCapabilities(provider).deletes
    ? "deleted again"
    : "left for the provider to replace (it cannot delete)";
  return { ...seen, message: `${seen.message}; ${deleted}` };
}
