// One ACME order (RFC 8555 §7.4) for a set of names, validated with DNS-01 through a DnsProvider: create every
// TXT record first (a wildcard and its apex put two values on one `_acme-challenge` name), wait until each is
// visible, answer all challenges, wait for every authorization, then delete every record, also on failure.
// Then finalize with a fresh key's CSR and download the chain. It does not decide when to issue (schedule.ts)
// or store anything (lib/storage); it runs in the ACME worker.

import { type AcmeClient, AcmeError, createCsr, createPrivateKey, runAcme } from "./acme_client.ts";

/** What issue.ts needs from a DNS provider (lib/dns/provider.ts states the full contract). */
export interface TxtRecords {
  createTxtRecord(fqdn: string, value: string): Promise<unknown>;
  deleteTxtRecord(handle: unknown): Promise<void>;
}

export interface IssueOptions {
  client: AcmeClient;
  directoryUrl: string;
  dns: TxtRecords;
  /** Resolves once `value` is visible for `fqdn` where the CA will look; rejects on timeout. */
  waitForTxt: (fqdn: string, value: string) => Promise<void>;
  keyType: "ecdsa" | "rsa";
  /** Progress lines for the log (never secrets). */
  onProgress?: (event: string, fields: Record<string, string>) => void;
}

export interface IssuedChain {
  /** Leaf first, then the intermediates, PEM. */
  certPem: string;
  /** The new certificate's private key, PEM. */
  keyPem: string;
}

interface PendingChallenge {
  identifier: string;
  fqdn: string;
  value: string;
  // deno-lint-ignore no-explicit-any
  authz: any;
  // deno-lint-ignore no-explicit-any
  challenge: any;
}

/**
 * Obtains a certificate for `names` ("example.com", "*.example.com"). Throws AcmeError (with the server's
 * problem document when there was one) or the DNS provider's error; TXT records it created are deleted
 * either way (a failed deletion is reported through onProgress, not thrown over the original error).
 */
export async function issueCertificate(names: string[], options: IssueOptions): Promise<IssuedChain> {
  const { client, directoryUrl } = options;
  const acmeCall = <T>(doing: string, call: () => Promise<T>) => runAcme(doing, directoryUrl, call);
  const order = await acmeCall(
    `create an order for ${names.join(", ")}`,
    () => client.createOrder({ identifiers: names.map((value) => ({ type: "dns", value })) }),
  );
  const authorizations = await acmeCall(
    "fetch the order's authorizations",
    () => client.getAuthorizations(order),
  );

  const pending: PendingChallenge[] = [];
  for (const authz of authorizations) {
    if (authz.status === "valid") continue; // RFC 8555 §7.1.4: reused from an earlier order.
    const challenge = authz.challenges.find((c: { type: string }) => c.type === "dns-01");
    const identifier = `${authz.wildcard ? "*." : ""}${authz.identifier.value}`;
    if (!challenge) {
      throw new AcmeError(`The ACME server offers no dns-01 challenge for ${identifier}`, null);
    }
    // RFC 8555 §8.4: the TXT value is the base64url SHA-256 of the key authorization; acme-client computes it.
    const value = await client.getChallengeKeyAuthorization(challenge);
    pending.push({ identifier, fqdn: `_acme-challenge.${authz.identifier.value}`, value, authz, challenge });
  }

  const handles: unknown[] = [];
  try {
    for (const item of pending) {
      handles.push(await options.dns.createTxtRecord(item.fqdn, item.value));
      options.onProgress?.("dns record created", { name: item.fqdn, for: item.identifier });
    }
    for (const item of pending) await options.waitForTxt(item.fqdn, item.value);
    for (const item of pending) {
      await acmeCall(
        `answer the dns-01 challenge for ${item.identifier}`,
        () => client.completeChallenge(item.challenge),
      );
    }
    for (const item of pending) {
      await acmeCall(`validate ${item.identifier}`, () => client.waitForValidStatus(item.authz));
    }
  } finally {
    await deleteAll(handles, options);
  }

  const keyPem = await createPrivateKey(options.keyType);
  const csr = await createCsr(names, keyPem);
  const finalized = await acmeCall("finalize the order", () => client.finalizeOrder(order, csr));
  const certPem = await acmeCall("download the certificate", () => client.getCertificate(finalized));
  options.onProgress?.("certificate obtained", { names: names.join(",") });
  return { certPem, keyPem };
}

async function deleteAll(handles: unknown[], options: IssueOptions): Promise<void> {
  for (const handle of handles) {
    try {
      await options.dns.deleteTxtRecord(handle);
    } catch (error) {
      // Leftovers are removed by the provider's stale cleanup on the next order; the order's own outcome
      // is what the caller needs to hear about.
      options.onProgress?.("dns record cleanup failed", {
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }
}
