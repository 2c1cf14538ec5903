// One ACME order (RFC 8555 §7.4) for a set of names, validated through a ChallengeSolver (DNS-01 or HTTP-01):
// publish every response first (a wildcard and its apex put two TXT values on one `_acme-challenge` name),
// wait until each is visible, answer all challenges, wait for every authorization, then withdraw every
// response, also on failure. Then finalize with a fresh key's CSR and download the chain. A renewal names the
// certificate it replaces (RFC 9773 §5). It does not decide when to issue (schedule.ts, ari_schedule.ts) or
// store anything (lib/storage); it runs in the ACME worker.

import { errorMessage } from "../error_message.ts";
import {
  type AcmeAuthorization,
  type AcmeChallenge,
  type AcmeClient,
  AcmeError,
  type AcmeOrder,
  runAcme,
} from "./acme_client.ts";
import { createCsr, createPrivateKey } from "./csr.ts";
import type { ChallengeResponse, ChallengeSolver } from "./solvers.ts";

export interface IssueOptions {
  client: AcmeClient;
  directoryUrl: string;
  solver: ChallengeSolver;
  keyType: "ecdsa" | "rsa";
  /**
   * The RFC 9773 §4.1 certID of the certificate this order renews, sent as newOrder's `replaces` (§5); null
   * for a first order. A CA that refuses it gets the order again without it (see `createOrder`).
   */
  replaces?: string | null;
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
  authz: AcmeAuthorization;
  challenge: AcmeChallenge;
}

/**
 * Obtains a certificate for `names` ("example.com", "*.example.com"). Throws AcmeError (with the server's
 * problem document when there was one) or the solver's error; responses it published are withdrawn either
 * way (a failed withdrawal is reported through onProgress, not thrown over the original error).
 */
export async function issueCertificate(names: string[], options: IssueOptions): Promise<IssuedChain> {
  const { client, directoryUrl } = options;
  const acmeCall = <T>(doing: string, call: () => Promise<T>) => runAcme(doing, directoryUrl, call);
  const order = await createOrder(names, options);
  const authorizations = await acmeCall(
    "fetch the order's authorizations",
    () => client.getAuthorizations(order),
  );

  const pending: PendingChallenge[] = [];
  for (const authz of authorizations) {
    if (authz.status === "valid") continue; // RFC 8555 §7.1.4: reused from an earlier order.
    const type = options.solver.type;
    const challenge = authz.challenges.find((c) => c.type === type);
    const identifier = `${authz.wildcard ? "*." : ""}${authz.identifier.value}`;
    if (!challenge) {
      const hint = authz.wildcard ? " (wildcards need dns-01: configure cloudflare)" : "";
      throw new AcmeError(`The ACME server offers no ${type} challenge for ${identifier}${hint}`, null);
    }
    // RFC 8555 §8.1: the key authorization is token "." thumbprint; for dns-01 the client returns its
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

/**
 * newOrder (RFC 8555 §7.4) for `names`, with `replaces` when `options.replaces` is set (RFC 9773 §5). When
 * the CA refuses that field (`isReplacesRefused`), the order is sent once more without it: `replaces` only
 * helps the CA, and a renewal must not fail over it. Throws AcmeError like `issueCertificate`.
 */
export async function createOrder(
  names: string[],
  options: IssueOptions,
): Promise<AcmeOrder> {
  const { client, directoryUrl } = options;
  const identifiers = names.map((value) => ({ type: "dns", value }));
  const doing = `create an order for ${names.join(", ")}`;
  const replaces = options.replaces ?? null;
  if (replaces === null) return await runAcme(doing, directoryUrl, () => client.createOrder({ identifiers }));
  const payload = { identifiers, replaces };
  try {
    return await runAcme(doing, directoryUrl, () => client.createOrder(payload));
  } catch (error) {
    if (!isReplacesRefused(error)) throw error;
    options.onProgress?.("order retried without replaces", {
      names: names.join(","),
      replaces,
      reason: errorMessage(error),
    });
    return await runAcme(doing, directoryUrl, () => client.createOrder({ identifiers }));
  }
}

/**
 * Whether a failed newOrder may have been refused over its `replaces` field, so that the same order without it
 * is worth one more try: any problem the CA sent except a rate limit (which the plain order would meet too).
 * RFC 9773 §5 names 409 alreadyReplaced, but CAs refuse the field their own ways: Boulder answers 403
 * unauthorized when another account issued the certificate (an account re-registered after base_dir/acme was
 * lost) and 404 when it no longer knows the serial. A certificate must never stop renewing over a hint.
 */
export function isReplacesRefused(error: unknown): boolean {
  if (!(error instanceof AcmeError) || error.problem === null) return false;
  return error.problem.type !== RATE_LIMITED;
}

/** RFC 8555 §6.7: the request exceeds a rate limit. */
const RATE_LIMITED = "urn:ietf:params:acme:error:rateLimited";

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
