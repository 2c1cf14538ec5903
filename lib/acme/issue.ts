// One ACME order (RFC 8555 §7.4) for a set of names, validated through a ChallengeSolver (DNS-01 or HTTP-01):
// publish every response first (a wildcard and its apex put two TXT values on one `_acme-challenge` name),
// wait until each is visible, answer all challenges, wait for every authorization, then withdraw every
// response, also on failure. Then finalize with a fresh key's CSR and download the chain. It does not decide
// when to issue (schedule.ts) or store anything (lib/storage); it runs in the ACME worker.

import { errorMessage } from "../error_message.ts";
import { type AcmeClient, AcmeError, createCsr, createPrivateKey, runAcme } from "./acme_client.ts";
import type { ChallengeResponse, ChallengeSolver } from "./solvers.ts";

export interface IssueOptions {
  client: AcmeClient;
  directoryUrl: string;
  solver: ChallengeSolver;
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
  response: ChallengeResponse;
  // deno-lint-ignore no-explicit-any
  authz: any;
  // deno-lint-ignore no-explicit-any
  challenge: any;
}

/**
 * Obtains a certificate for `names` ("example.com", "*.example.com"). Throws AcmeError (with the server's
 * problem document when there was one) or the solver's error; responses it published are withdrawn either
 * way (a failed withdrawal is reported through onProgress, not thrown over the original error).
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
    const type = options.solver.type;
    const challenge = authz.challenges.find((c: { type: string }) => c.type === type);
    const identifier = `${authz.wildcard ? "*." : ""}${authz.identifier.value}`;
    if (!challenge) {
      const hint = authz.wildcard ? " (wildcards need dns-01: configure cloudflare)" : "";
      throw new AcmeError(`The ACME server offers no ${type} challenge for ${identifier}${hint}`, null);
    }
    // RFC 8555 §8.1: the key authorization is token "." thumbprint; for dns-01 acme-client returns its
    // base64url SHA-256 digest, the TXT value (§8.4).
    const keyAuthorization = await client.getChallengeKeyAuthorization(challenge);
    pending.push({
      identifier,
      response: { domain: authz.identifier.value, token: challenge.token, keyAuthorization },
      authz,
      challenge,
    });
  }

  const handles: unknown[] = [];
  try {
    for (const item of pending) {
      handles.push(await options.solver.present(item.response));
      options.onProgress?.("challenge response published", {
        type: options.solver.type,
        for: item.identifier,
      });
    }
    for (const item of pending) await options.solver.ready(item.response);
    for (const item of pending) {
      await acmeCall(
        `answer the ${options.solver.type} challenge for ${item.identifier}`,
        () => client.completeChallenge(item.challenge),
      );
    }
    for (const item of pending) {
      await acmeCall(`validate ${item.identifier}`, () => client.waitForValidStatus(item.authz));
    }
  } finally {
    await withdrawAll(handles, options);
  }

  const keyPem = await createPrivateKey(options.keyType);
  const csr = await createCsr(names, keyPem);
  const finalized = await acmeCall("finalize the order", () => client.finalizeOrder(order, csr));
  const certPem = await acmeCall("download the certificate", () => client.getCertificate(finalized));
  options.onProgress?.("certificate obtained", { names: names.join(",") });
  return { certPem, keyPem };
}

async function withdrawAll(handles: unknown[], options: IssueOptions): Promise<void> {
  for (const handle of handles) {
    try {
      await options.solver.cleanup(handle);
    } catch (error) {
      // DNS leftovers are removed by the provider's stale cleanup before the next order; the order's own
      // outcome is what the caller needs to hear about.
      options.onProgress?.("challenge cleanup failed", {
        error: errorMessage(error),
      });
    }
  }
}
