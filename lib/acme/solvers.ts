// How an order's challenges are answered: DNS-01 through a DnsProvider (TXT records at `_acme-challenge`,
// RFC 8555 §8.4) or HTTP-01 through nexo's own plain-HTTP listener (RFC 8555 §8.3). issue.ts drives either
// through the same three steps; this module owns what each step means for each type.

import type { TxtRecordHandle } from "../dns/provider.ts";

/** One challenge answered for one identifier. */
export interface ChallengeResponse {
  /** The identifier as the order names it ("example.com"; a wildcard's authorization names its base domain). */
  domain: string;
  /** The challenge token (RFC 8555 §8.1). */
  token: string;
  /** What the CA expects: the key authorization, or for dns-01 its base64url SHA-256 digest. */
  keyAuthorization: string;
}

/**
 * Publishes challenge responses. issue.ts calls `present` for every challenge of an order first, then `ready`
 * for each, then answers the challenges, and finally calls `cleanup` for every handle `present` returned,
 * also when the order failed.
 */
export interface ChallengeSolver {
  readonly type: "dns-01" | "http-01";
  present(response: ChallengeResponse): Promise<unknown>;
  /** Resolves once the CA can see the response (DNS propagation); rejects on timeout. */
  ready(response: ChallengeResponse): Promise<void>;
  cleanup(handle: unknown): Promise<void>;
}

/** What the DNS solver needs from a provider (lib/dns/provider.ts states the full contract). */
export interface TxtRecords {
  createTxtRecord(fqdn: string, value: string): Promise<TxtRecordHandle>;
  deleteTxtRecord(handle: TxtRecordHandle): Promise<void>;
}

/** DNS-01: a TXT record at `_acme-challenge.<domain>`, visible at `waitForTxt`'s servers before answering. */
export function dnsSolver(
  records: TxtRecords,
  waitForTxt: (fqdn: string, value: string) => Promise<void>,
): ChallengeSolver {
  const fqdn = (response: ChallengeResponse) => `_acme-challenge.${response.domain}`;
  return {
    type: "dns-01",
    present: (response) => records.createTxtRecord(fqdn(response), response.keyAuthorization),
    ready: (response) => waitForTxt(fqdn(response), response.keyAuthorization),
    cleanup: (handle) => records.deleteTxtRecord(handle as TxtRecordHandle),
  };
}

/**
 * HTTP-01: the main thread serves the key authorization at /.well-known/acme-challenge/<token> on
 * `http_listen`. `publish` resolves once it is being served; `withdraw` stops serving it.
 */
export function httpSolver(options: {
  publish: (token: string, keyAuthorization: string) => Promise<void>;
  withdraw: (token: string) => Promise<void>;
}): ChallengeSolver {
  return {
    type: "http-01",
    present: async (response) => {
      await options.publish(response.token, response.keyAuthorization);
      return response.token;
    },
    ready: () => Promise.resolve(),
    cleanup: (handle) => options.withdraw(handle as string),
  };
}
