// The one place nexo touches the acme-client package: building a client for a directory with an account key,
// trusting an extra CA for a private ACME server's TLS, and turning acme-client's errors into AcmeError with the
// server's problem document (RFC 8555 §6.7). acme-client keeps only a problem's `detail`, sets no request
// timeout, and turns every failure without an answer (refused, timed out, DNS, TLS) into "Cannot read
// properties of undefined (reading 'config')"; all three are fixed up here.
// It does not run orders (issue.ts) or store accounts (lib/storage/cert_repository.ts).

import { errorMessage } from "../error_message.ts";
import * as acme from "acme-client";
import https from "node:https";
import { parseRetryAfter } from "./schedule.ts";

/** An ACME problem document (RFC 8555 §6.7, RFC 7807), plus the Retry-After the server sent with it. */
export interface AcmeProblem {
  type: string;
  detail: string;
  status: number;
  /** From a Retry-After header (RFC 8555 §6.6), in ms; null when absent. */
  retryAfterMs: number | null;
}

/** A failed ACME operation: what nexo was doing, against which server, and the server's problem if any. */
export class AcmeError extends Error {
  constructor(message: string, readonly problem: AcmeProblem | null, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "AcmeError";
  }
}

export type AcmeClient = acme.Client;

export interface AcmeClientOptions {
  directoryUrl: string;
  /** The account's private key, PEM. */
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
 * acme-client sets no timeout, so a server that accepts connections and never answers (hung, stopped with
 * SIGSTOP, or a firewall dropping its replies) held the worker, and with it every later renewal, for ever.
 * 30 s is far above an ACME server's usual sub-second answers and matches the Cloudflare client's bound.
 */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

// acme-client retries network errors, 5xx and 429 itself, up to 5 times with waits of 5 to 25 s, or for as
// long as a Retry-After says, inside one call: a refused connection took 75 s to report. Retrying is the
// renewal scheduler's job (backoff that survives restarts, Retry-After obeyed without holding a worker), so
// acme-client answers at once. badNonce is a different path (RFC 8555 §6.5) and is still retried by it.
(acme.axios.defaults as unknown as { acmeSettings: { retryMaxAttempts: number } }).acmeSettings
  .retryMaxAttempts = 0;

// acme-client's own response interceptor, with its retries off, hands a failure that got no answer to a
// status check that reads `response.config` of undefined: the TypeError hides whether the server refused,
// timed out, did not resolve or failed TLS. Such failures skip it here and reach runAcme unchanged; answered
// requests still go through it (it turns error statuses into errors). `handlers` is public in axios's
// InterceptorManager; tests/acme_faults_test.ts fails if an upgrade changes this.
type Rejected = (error: unknown) => unknown;
const acmeClientHandlers = (acme.axios.interceptors.response as unknown as {
  handlers?: Array<{ rejected?: Rejected | null } | null>;
}).handlers ?? [];
for (const handler of acmeClientHandlers) {
  const rejected = handler?.rejected;
  if (!handler || !rejected) continue;
  handler.rejected = (error) => hasResponse(error) ? rejected(error) : Promise.reject(error);
}
acme.axios.defaults.timeout = DEFAULT_REQUEST_TIMEOUT_MS;

function hasResponse(error: unknown): boolean {
  return typeof error === "object" && error !== null &&
    (error as { response?: unknown }).response !== undefined;
}

// acme-client sends every request through this axios instance; the interceptor below sees each response.
let lastProblem: AcmeProblem | null = null;
acme.axios.interceptors.response.use((response) => {
  const type = response.headers?.["content-type"];
  if (response.status >= 400 && typeof type === "string" && type.includes("problem+json") && response.data) {
    lastProblem = {
      type: String(response.data.type ?? "about:blank"),
      detail: String(response.data.detail ?? ""),
      status: response.status,
      retryAfterMs: parseRetryAfter(
        typeof response.headers["retry-after"] === "string" ? response.headers["retry-after"] : null,
        Date.now(),
      ) ?? null,
    };
  }
  return response;
});

/** Creates a client for one directory. The account is not registered here: see `ensureAccount`. */
export function createAcmeClient(options: AcmeClientOptions): AcmeClient {
  if (options.caCertsPem && options.caCertsPem.length > 0) {
    // node:https in Deno ignores DENO_CERT and would need NODE_EXTRA_CA_CERTS at process start; an agent
    // with the CA works without touching the environment. It is set on acme-client's shared axios instance,
    // which is fine: a nexo process talks to one ACME directory.
    acme.axios.defaults.httpsAgent = new https.Agent({ ca: options.caCertsPem, keepAlive: true });
  }
  acme.axios.defaults.timeout = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  return new acme.Client({
    directoryUrl: options.directoryUrl,
    accountKey: options.accountKeyPem,
    ...(options.accountUrl ? { accountUrl: options.accountUrl } : {}),
    ...(options.eab
      ? { externalAccountBinding: { kid: options.eab.kid, hmacKey: options.eab.hmacKey } }
      : {}),
    backoffAttempts: 10,
    backoffMin: 1_000,
    backoffMax: 20_000,
  });
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
 * Runs one acme-client call and rethrows its failure as an AcmeError saying what nexo was doing, carrying
 * the problem document the server sent for it (if any).
 */
export async function runAcme<T>(doing: string, directoryUrl: string, call: () => Promise<T>): Promise<T> {
  lastProblem = null;
  try {
    return await call();
  } catch (error) {
    const problem = lastProblem ?? challengeProblem(error);
    throw new AcmeError(`Cannot ${doing}: ${describeFailure(error, problem, directoryUrl)}`, problem, {
      cause: error,
    });
  }
}

/**
 * An invalid authorization reaches us as acme-client's JSON dump of it; the reason is in its challenges'
 * `error` (RFC 8555 §7.1.4, §8). Returns that problem, or null.
 */
function challengeProblem(error: unknown): AcmeProblem | null {
  const message = error instanceof Error ? error.message : "";
  if (!message.startsWith("{")) return null;
  try {
    const authz = JSON.parse(message);
    const failed = (authz.challenges ?? []).find((c: { error?: unknown }) => c.error)?.error;
    if (!failed) return null;
    return {
      type: String(failed.type ?? "about:blank"),
      detail: String(failed.detail ?? ""),
      status: Number(failed.status ?? 0),
      retryAfterMs: null,
    };
  } catch {
    return null;
  }
}

function describeFailure(error: unknown, problem: AcmeProblem | null, directoryUrl: string): string {
  if (problem) return `${problem.detail || problem.type} (${problem.type}, HTTP ${problem.status})`;
  const message = errorMessage(error);
  const code = (error as { code?: string } | null)?.code;
  const server = `the ACME server at ${directoryUrl}`;
  if (code === "ECONNREFUSED") {
    return `${server} refused the connection; check acme.directory and that the server is up`;
  }
  // axios reports its own timeout as ECONNABORTED ("timeout of 30000ms exceeded"), or ETIMEDOUT.
  if (code === "ECONNABORTED" || code === "ETIMEDOUT") {
    return `${server} did not answer (${message}); check that it is up and reachable from this host`;
  }
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") {
    return `the ACME server's host in ${directoryUrl} does not resolve; check acme.directory and DNS`;
  }
  if (/certificate|self.signed|UNABLE_TO_VERIFY|UnknownIssuer/i.test(`${code ?? ""} ${message}`)) {
    return `TLS to ${directoryUrl} failed (${message}); for a private ACME server set acme.ca_cert`;
  }
  // acme-client's TypeError, should a failure without an answer still reach its interceptor.
  if (message.includes("reading 'config'")) {
    return `${server} could not be reached; check acme.directory and that the server is up`;
  }
  return `${message} (talking to ${server})`;
}

/** Creates a new private key in PEM: ECDSA P-256 (the default) or RSA-2048. */
export async function createPrivateKey(type: "ecdsa" | "rsa"): Promise<string> {
  const key = type === "rsa"
    ? await acme.crypto.createPrivateRsaKey(2048)
    : await acme.crypto.createPrivateEcdsaKey("P-256");
  return key.toString();
}

/** Creates a CSR for `names` (first name as CN) signed with `keyPem`. */
export async function createCsr(names: string[], keyPem: string): Promise<string> {
  const [, csr] = await acme.crypto.createCsr({ commonName: names[0]!, altNames: names }, keyPem);
  return csr.toString();
}
