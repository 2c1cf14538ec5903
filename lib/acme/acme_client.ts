// nexo's ACME client (RFC 8555): the directory, nonces, JWS-signed POSTs with badNonce retried (§6.5), the
// account (§7.3, with External Account Binding, §7.3.4), orders, authorizations, challenges, finalization and
// the certificate download, each request bounded by a timeout; and AcmeError, which says what nexo was doing,
// against which server, with the server's problem document (§6.7) when it sent one.
// It does not run orders (issue.ts) or store accounts (lib/storage/cert_repository.ts).
//
// Why not the npm acme-client package, which nexo used until 2026-12-07: it runs on Deno's Node compatibility
// layer (node:crypto, node:https, axios), which the worker's isolate then loads and runs; that code stayed
// resident after the worker was terminated. Measured with the same job shape (a worker making an HTTPS
// request, a key and a CSR, then terminated): +50 MiB while it ran and +24 MiB after, against +22 and +14
// with fetch and WebCrypto (docs/performance.md).

import { errorMessage } from "../error_message.ts";
import { VERSION } from "../version.ts";
import {
  type AccountKey,
  base64url,
  importAccountKey,
  signExternalAccountBinding,
  signJws,
  thumbprint,
} from "./jws.ts";
import { splitPemBlocks } from "../tls/pem.ts";
import { parseRetryAfter } from "./schedule.ts";
import { sleep } from "../sleep.ts";

/** An ACME problem document (RFC 8555 §6.7, RFC 7807), plus the Retry-After the server sent with it. */
export interface AcmeProblem {
  type: string;
  detail: string;
  status: number;
  /** From a Retry-After header (RFC 8555 §6.6), in ms; null when absent. */
  retryAfterMs: number | null;
  /** A compound problem's parts (§6.7.1), when the server sent them. */
  subproblems?: AcmeProblem[];
}

/** A failed ACME operation: what nexo was doing, against which server, and the server's problem if any. */
export class AcmeError extends Error {
  constructor(message: string, readonly problem: AcmeProblem | null, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "AcmeError";
  }
}

/** The ACME objects nexo reads (RFC 8555 §7.1.3, §7.1.4, §8), with the URL each was fetched from. */
export interface AcmeOrder {
  url: string;
  status: string;
  authorizations: string[];
  finalize: string;
  certificate?: string;
  error?: unknown;
}

export interface AcmeChallenge {
  type: string;
  url: string;
  token: string;
  status?: string;
  error?: unknown;
}

export interface AcmeAuthorization {
  url: string;
  status: string;
  identifier: { type: string; value: string };
  wildcard?: boolean;
  challenges: AcmeChallenge[];
}

export interface AcmeClientOptions {
  directoryUrl: string;
  /** The account's private key, PEM (PKCS#8). */
  accountKeyPem: string;
  /** The account URL when the account exists already (skips a lookup). */
  accountUrl?: string | null;
  /** Extra CA certificates (PEM) trusted for the ACME server's TLS, e.g. Pebble's in tests. */
  caCertsPem?: string[];
  /** Longest one request may wait for the server, in ms (see DEFAULT_REQUEST_TIMEOUT_MS); tests shorten it. */
  requestTimeoutMs?: number;
  /** External Account Binding (RFC 8555 §7.3.4), used when the account is registered. */
  eab?: { kid: string; hmacKey: string } | null;
}

/**
 * A server that accepts connections and never answers (hung, stopped with SIGSTOP, or a firewall dropping its
 * replies) must not hold the worker, and with it every later renewal, for ever. 30 s is far above an ACME
 * server's usual sub-second answers and matches the Cloudflare client's bound.
 */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/**
 * Polling an authorization or an order that is still pending or processing (§7.5.1, §7.4): at once, then
 * after 0.25, 0.5, 1, 2 ... s, at most 20 s apart or as long as a Retry-After says (capped the same), 12
 * checks in all (about two minutes). A CA that validates in milliseconds (Pebble; Let's Encrypt takes about
 * a second) is seen valid a quarter second later, not a whole one. Retrying a failed order is the renewal
 * scheduler's job, not this loop's.
 */
const POLL_CHECKS = 12;
const POLL_MIN_MS = 250;
const POLL_MAX_MS = 20_000;
/**
 * §6.5: a badNonce answer carries a fresh nonce, and the request is sent again with it, up to this many times
 * in all. Servers reject nonces at random (Pebble 5% by default, Boulder's after a restart); six attempts make a
 * request fail only if six nonces in a row are refused.
 */
const NONCE_ATTEMPTS = 6;
const JOSE = "application/jose+json";

interface Directory {
  newNonce: string;
  newAccount: string;
  newOrder: string;
}

/** A non-2xx answer: the problem document it carried (or one made from the status) and the request's URL. */
class ProblemResponse extends Error {
  constructor(readonly problem: AcmeProblem, readonly url: string) {
    super(`${problem.detail || problem.type} (HTTP ${problem.status} from ${url})`);
    this.name = "ProblemResponse";
  }
}

/** One answer: status, headers and the body read as text. */
interface Answer {
  status: number;
  headers: Headers;
  body: string;
}

/** An ACME account at one directory: signs and sends every request nexo makes there. */
export class AcmeClient {
  readonly #options: AcmeClientOptions;
  readonly #timeoutMs: number;
  readonly #http: Deno.HttpClient | undefined;
  #key: Promise<AccountKey> | null = null;
  #directory: Promise<Directory> | null = null;
  #accountUrl: string | null;
  #nonce: string | null = null;

  constructor(options: AcmeClientOptions) {
    this.#options = options;
    this.#timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.#accountUrl = options.accountUrl ?? null;
    this.#http = options.caCertsPem && options.caCertsPem.length > 0
      ? Deno.createHttpClient({ caCerts: options.caCertsPem })
      : undefined;
  }

  /** The account URL (§7.3); throws before the account was registered or given. */
  getAccountUrl(): string {
    if (this.#accountUrl === null) throw new Error("No ACME account URL yet: register the account first");
    return this.#accountUrl;
  }

  /**
   * newAccount (§7.3): registers the account of this key, or finds the existing one (the server answers 200
   * with its URL), with External Account Binding when the options carry one.
   */
  async createAccount(payload: { termsOfServiceAgreed: boolean; contact?: string[] }): Promise<void> {
    const directory = await this.#getDirectory();
    const key = await this.#accountKey();
    const eab = this.#options.eab
      ? {
        externalAccountBinding: await signExternalAccountBinding(
          key,
          this.#options.eab,
          directory.newAccount,
        ),
      }
      : {};
    const answer = await this.#post(directory.newAccount, { ...payload, ...eab }, { useJwk: true });
    const location = answer.headers.get("location");
    if (location === null) {
      throw new Error(`The ACME server's newAccount answer (HTTP ${answer.status}) has no Location header`);
    }
    this.#accountUrl = location;
  }

  /** newOrder (§7.4) for `payload.identifiers`, with `replaces` when given (RFC 9773 §5). */
  async createOrder(
    payload: { identifiers: Array<{ type: string; value: string }>; replaces?: string },
  ): Promise<AcmeOrder> {
    const directory = await this.#getDirectory();
    const answer = await this.#post(directory.newOrder, payload);
    const url = answer.headers.get("location");
    if (url === null) {
      throw new Error(`The ACME server's newOrder answer (HTTP ${answer.status}) has no Location`);
    }
    return { ...parseJson(answer, directory.newOrder) as Omit<AcmeOrder, "url">, url };
  }

  /** The order's authorizations (§7.5), each fetched with POST-as-GET. */
  async getAuthorizations(order: AcmeOrder): Promise<AcmeAuthorization[]> {
    const result: AcmeAuthorization[] = [];
    for (const url of order.authorizations ?? []) {
      const answer = await this.#post(url, undefined);
      result.push({ ...parseJson(answer, url) as Omit<AcmeAuthorization, "url">, url });
    }
    return result;
  }

  /**
   * The key authorization for a challenge (§8.1: token "." thumbprint); for dns-01 its base64url SHA-256
   * digest, the TXT record's value (§8.4).
   */
  async getChallengeKeyAuthorization(challenge: AcmeChallenge): Promise<string> {
    const keyAuthorization = `${challenge.token}.${await thumbprint(await this.#accountKey())}`;
    if (challenge.type !== "dns-01") return keyAuthorization;
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(keyAuthorization));
    return base64url(new Uint8Array(digest));
  }

  /** Tells the server the challenge's response is in place (§7.5.1: an empty JSON object). */
  async completeChallenge(challenge: AcmeChallenge): Promise<void> {
    await this.#post(challenge.url, {});
  }

  /**
   * Polls an authorization until it is valid (§7.5.1). Throws a ProblemResponse with the failed challenge's
   * error when it turns invalid, and an Error when it is still pending after the last check.
   */
  async waitForValidStatus(authorization: AcmeAuthorization): Promise<AcmeAuthorization> {
    return await this.#poll(
      authorization.url,
      `the authorization for ${authorization.identifier.value}`,
      (body) => {
        const failed = (body as AcmeAuthorization).challenges?.find((c) => c.error !== undefined)?.error;
        return failed ?? null;
      },
    ) as AcmeAuthorization;
  }

  /** Finalizes the order with the PEM `csrPem` (§7.4) and waits until the certificate is issued. */
  async finalizeOrder(order: AcmeOrder, csrPem: string): Promise<AcmeOrder> {
    const der = splitPemBlocks(csrPem).find((block) => block.label === "CERTIFICATE REQUEST")?.der;
    if (der === undefined) {
      throw new Error("Cannot finalize the order: the CSR is not a PEM certificate request");
    }
    const csr = base64url(der);
    const answer = await this.#post(order.finalize, { csr });
    const finalized = { ...parseJson(answer, order.finalize) as Omit<AcmeOrder, "url">, url: order.url };
    if (finalized.status === "valid") return finalized;
    const done = await this.#poll(order.url, "the order", (body) => (body as AcmeOrder).error ?? null);
    return { ...done as Omit<AcmeOrder, "url">, url: order.url };
  }

  /** Downloads the order's certificate chain, leaf first (§7.4.2). */
  async getCertificate(order: AcmeOrder): Promise<string> {
    if (!order.certificate) {
      throw new Error(`The ACME order ${order.url} is ${order.status} and has no certificate`);
    }
    const answer = await this.#post(order.certificate, undefined, {
      accept: "application/pem-certificate-chain",
    });
    if (!answer.body.includes("-----BEGIN CERTIFICATE-----")) {
      throw new Error(`The ACME server's certificate at ${order.certificate} is not a PEM chain`);
    }
    return answer.body;
  }

  /** Closes the HTTP client holding the extra CA certificates, if any. */
  close(): void {
    this.#http?.close();
  }

  /** POST-as-GET `url` until its `status` is valid; invalid ends with the problem `failure` finds. */
  async #poll(url: string, what: string, failure: (body: unknown) => unknown): Promise<unknown> {
    let waitMs = POLL_MIN_MS;
    for (let check = 1;; check++) {
      const answer = await this.#post(url, undefined);
      const body = parseJson(answer, url) as { status?: string };
      if (body.status === "valid") return body;
      if (body.status === "invalid") {
        const problem = toProblem(failure(body), answer);
        if (problem !== null) throw new ProblemResponse(problem, url);
        throw new Error(`The ACME server marked ${what} invalid without saying why (${url})`);
      }
      if (body.status !== "pending" && body.status !== "processing" && body.status !== "ready") {
        throw new Error(`The ACME server answered an unknown status "${body.status}" for ${what} (${url})`);
      }
      if (check === POLL_CHECKS) {
        throw new Error(
          `The ACME server still had ${what} ${body.status} after ${POLL_CHECKS} checks (${url})`,
        );
      }
      const retryAfter = parseRetryAfter(answer.headers.get("retry-after"), Date.now());
      await sleep(Math.min(retryAfter ?? waitMs, POLL_MAX_MS));
      waitMs = Math.min(waitMs * 2, POLL_MAX_MS);
    }
  }

  /** A signed POST (§6.2); `payload` undefined is a POST-as-GET (§6.3). Retries badNonce (§6.5). */
  async #post(
    url: string,
    payload: unknown,
    options: { useJwk?: boolean; accept?: string } = {},
  ): Promise<Answer> {
    const key = await this.#accountKey();
    const kid = options.useJwk ? null : this.getAccountUrl();
    for (let attempt = 1;; attempt++) {
      const nonce = this.#nonce ?? await this.#freshNonce();
      this.#nonce = null;
      const body = JSON.stringify(await signJws(key, { nonce, url, kid }, payload));
      const answer = await this.#send(url, {
        method: "POST",
        headers: { "content-type": JOSE, ...(options.accept ? { accept: options.accept } : {}) },
        body,
      });
      if (answer.status < 400) return answer;
      const problem = problemOf(answer);
      if (problem.type === "urn:ietf:params:acme:error:badNonce" && attempt < NONCE_ATTEMPTS) continue;
      throw new ProblemResponse(problem, url);
    }
  }

  async #freshNonce(): Promise<string> {
    const { newNonce } = await this.#getDirectory();
    const answer = await this.#send(newNonce, { method: "HEAD" });
    if (answer.status >= 400) throw new ProblemResponse(problemOf(answer), newNonce);
    const nonce = answer.headers.get("replay-nonce");
    if (nonce === null) throw new Error(`The ACME server's newNonce (${newNonce}) sent no Replay-Nonce`);
    this.#nonce = null;
    return nonce;
  }

  /** One request with the timeout; keeps the Replay-Nonce every answer carries (§6.5) for the next POST. */
  async #send(url: string, init: RequestInit): Promise<Answer> {
    const signal = AbortSignal.timeout(this.#timeoutMs);
    try {
      const response = await fetch(url, {
        ...init,
        headers: { "user-agent": `nexo/${VERSION}`, ...init.headers as Record<string, string> },
        signal,
        ...(this.#http ? { client: this.#http } : {}),
      });
      const body = await response.text();
      const nonce = response.headers.get("replay-nonce");
      if (nonce !== null) this.#nonce = nonce;
      return { status: response.status, headers: response.headers, body };
    } catch (error) {
      if (signal.aborted) throw new RequestTimeout(this.#timeoutMs, { cause: error });
      throw error;
    }
  }

  #getDirectory(): Promise<Directory> {
    if (this.#directory === null) {
      const url = this.#options.directoryUrl;
      this.#directory = this.#send(url, { method: "GET" }).then((answer) => {
        if (answer.status >= 400) throw new ProblemResponse(problemOf(answer), url);
        const directory = parseJson(answer, url) as Partial<Directory>;
        for (const name of ["newNonce", "newAccount", "newOrder"] as const) {
          if (typeof directory[name] !== "string") {
            throw new Error(`The ACME directory at ${url} has no ${name} URL; check acme.directory`);
          }
        }
        return directory as Directory;
      });
      // A directory that could not be read is asked again by the next call.
      this.#directory.catch(() => this.#directory = null);
    }
    return this.#directory;
  }

  #accountKey(): Promise<AccountKey> {
    this.#key ??= importAccountKey(this.#options.accountKeyPem);
    return this.#key;
  }
}

/** A request that got no answer within the client's timeout. */
class RequestTimeout extends Error {
  constructor(readonly timeoutMs: number, options: { cause: unknown }) {
    super(`no answer within ${timeoutMs} ms`, options);
    this.name = "RequestTimeout";
  }
}

function parseJson(answer: Answer, url: string): unknown {
  try {
    return JSON.parse(answer.body);
  } catch {
    throw new Error(`The ACME server's answer from ${url} (HTTP ${answer.status}) is not JSON`);
  }
}

/** The problem document of an error answer, or one made from its status when it sent none (§6.7). */
function problemOf(answer: Answer): AcmeProblem {
  let body: unknown = null;
  try {
    body = JSON.parse(answer.body);
  } catch {
    // Not a problem document: described by its status below.
  }
  return toProblem(body, answer) ?? {
    type: "about:blank",
    detail: `HTTP ${answer.status} without a problem document`,
    status: answer.status,
    retryAfterMs: retryAfterOf(answer),
  };
}

/** `value` as an AcmeProblem when it looks like a problem document (it has a `type`), else null. */
function toProblem(value: unknown, answer: Answer): AcmeProblem | null {
  if (typeof value !== "object" || value === null || typeof (value as { type?: unknown }).type !== "string") {
    return null;
  }
  const document = value as { type: string; detail?: unknown; status?: unknown; subproblems?: unknown };
  const subproblems = Array.isArray(document.subproblems)
    ? document.subproblems.map((sub) => toProblem(sub, answer)).filter((sub) => sub !== null)
    : [];
  return {
    type: document.type,
    detail: typeof document.detail === "string" ? document.detail : "",
    status: typeof document.status === "number" ? document.status : answer.status,
    retryAfterMs: retryAfterOf(answer),
    ...(subproblems.length > 0
      ? { subproblems: subproblems.map((sub) => ({ ...sub, retryAfterMs: null })) }
      : {}),
  };
}

function retryAfterOf(answer: Answer): number | null {
  return answer.status >= 400 ? parseRetryAfter(answer.headers.get("retry-after"), Date.now()) ?? null : null;
}

/** Creates a client for one directory. The account is not registered here: see `ensureAccount`. */
export function createAcmeClient(options: AcmeClientOptions): AcmeClient {
  return new AcmeClient(options);
}

/**
 * Registers the account or finds the existing one for this key (RFC 8555 §7.3; the server returns the same
 * account for the same key) and returns its URL.
 */
export async function ensureAccount(
  client: AcmeClient,
  email: string | null,
  directoryUrl: string,
  withEab = false,
): Promise<string> {
  try {
    await runAcme(`register an ACME account at ${directoryUrl}`, directoryUrl, () =>
      client.createAccount({
        termsOfServiceAgreed: true,
        ...(email ? { contact: [`mailto:${email}`] } : {}),
      }));
  } catch (error) {
    throw withEabHint(error, withEab);
  }
  return client.getAccountUrl();
}

/**
 * A registration the CA refused over External Account Binding (RFC 8555 §7.3.4: externalAccountRequired
 * without one, unauthorized or malformed with a wrong one), with the config key to fix added.
 */
function withEabHint(error: unknown, withEab: boolean): unknown {
  if (!(error instanceof AcmeError) || error.problem === null) return error;
  const type = error.problem.type;
  const hint = type === "urn:ietf:params:acme:error:externalAccountRequired"
    ? "this CA requires External Account Binding: set acme.eab { kid, hmac_key } from the CA's dashboard"
    : withEab && /:(unauthorized|malformed)$/.test(type)
    ? "check acme.eab: the CA did not accept that kid and hmac_key (copy both again from its dashboard; " +
      "each pair registers one account)"
    : null;
  return hint === null ? error : new AcmeError(`${error.message}; ${hint}`, error.problem, { cause: error });
}

/**
 * Runs one client call and rethrows its failure as an AcmeError saying what nexo was doing, carrying the
 * problem document the server sent for it (if any).
 */
export async function runAcme<T>(doing: string, directoryUrl: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof AcmeError) throw error;
    const problem = error instanceof ProblemResponse ? error.problem : null;
    throw new AcmeError(`Cannot ${doing}: ${describeFailure(error, problem, directoryUrl)}`, problem, {
      cause: error,
    });
  }
}

function describeFailure(error: unknown, problem: AcmeProblem | null, directoryUrl: string): string {
  if (problem) return `${problem.detail || problem.type} (${problem.type}, HTTP ${problem.status})`;
  const server = `the ACME server at ${directoryUrl}`;
  if (error instanceof RequestTimeout) {
    return `${server} did not answer (${error.message}); check that it is up and reachable from this host`;
  }
  const message = failureText(error);
  if (/connection refused/i.test(message)) {
    return `${server} refused the connection; check acme.directory and that the server is up`;
  }
  if (/dns error|failed to lookup address/i.test(message)) {
    return `the ACME server's host in ${directoryUrl} does not resolve; check acme.directory and DNS`;
  }
  if (/certificate|UnknownIssuer/i.test(message)) {
    return `TLS to ${directoryUrl} failed (${message}); for a private ACME server set acme.ca_cert`;
  }
  return `${message} (talking to ${server})`;
}

/**
 * What went wrong, as one phrase. Deno's fetch throws "fetch failed" with the reason in its cause ("error
 * sending request for url (...): client error (Connect): tcp connect error: Connection refused"); the part
 * after the URL is kept.
 */
function failureText(error: unknown): string {
  const parts: string[] = [];
  for (let cause = error, depth = 0; cause instanceof Error && depth < 4; cause = cause.cause, depth++) {
    if (cause.message !== "fetch failed") parts.push(cause.message);
  }
  const text = parts.length > 0 ? parts.join(": ") : errorMessage(error);
  return text.replace(/^error sending request for url \([^)]*\): /, "");
}
