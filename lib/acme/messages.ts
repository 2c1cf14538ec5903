// The typed protocol between the main thread (supervisor.ts) and the ACME worker (worker.ts). Messages are
// plain structured-clone data. Private keys cross this boundary only inside `issued` (the main thread must
// serve them); tokens cross it only inside `job` (the worker must use them). Neither is ever logged.

import type { SharedStoreSettings } from "../storage/shared_store.ts";

/** What the worker needs to run jobs; sent with every job so a restarted worker needs no other state. */
export interface WorkerSettings {
  directoryUrl: string;
  /** Extra CA certificates (PEM) for the ACME server's TLS (`acme.ca_cert`), or empty. */
  caCertsPem: string[];
  email: string | null;
  /** Where certificates and account keys are stored (inside `base_dir`/`cert_dir`). */
  certDir: string;
  baseDir: string;
  keyType: "ecdsa" | "rsa";
  /** `acme.eab`: sent once, when the account is registered. The HMAC key is a secret. */
  eab: { kid: string; hmacKey: string } | null;
  /** `acme.issuers` after the first: the CAs tried in turn for a certificate the previous one failed. */
  fallbacks: Array<
    { directoryUrl: string; eab: { kid: string; hmacKey: string } | null; caCertsPem: string[] }
  >;
  /**
   * The DNS providers (`dns:` as config.ts has it, with each secret read from its file), or null without one.
   * Secrets inside: never log them.
   */
  dns:
    | { default: WorkerDnsProvider | null; zones: Array<{ zone: string; provider: WorkerDnsProvider }> }
    | null;
  /**
   * "host:port" servers the propagation check asks about the records of each provider, by its place in `dns`
   * ("" the default, else its zone): `acme.dns_resolvers`, or else the servers authoritative for where that
   * provider's records live, looked up by the main thread so the worker's network permission can name them.
   */
  checkServers: Record<string, string[]>;
  /** For names no DNS provider serves: answer HTTP-01 challenges through the main thread's `http_listen`. */
  http01: boolean;
  /** Every DNS server the worker may ask (`checkServers`' and `acme.dns_resolvers`), for its permission. */
  dnsResolvers: string[];
  /** `acme.retry_interval`, ms: the first backoff step after a failure. */
  retryIntervalMs: number;
  /** Bound on waiting for a TXT record to become visible, ms. */
  propagationTimeoutMs: number;
  /**
   * The shared store (`storage:`) with its files read, or null: certificates, accounts and locks are then in
   * Redis, not in cert_dir and base_dir. Secrets inside: never log them.
   */
  storage: SharedStoreSettings | null;
}

/** One DNS provider's settings as the worker builds it (lib/dns). */
export type WorkerDnsProvider =
  | { provider: "cloudflare"; apiToken: string; apiBase: string; zoneId: string | null }
  | {
    provider: "rfc2136";
    server: { hostname: string; port: number };
    keyName: string;
    algorithm: "hmac-sha1" | "hmac-sha256" | "hmac-sha384" | "hmac-sha512";
    secretBase64: string;
    zone: string | null;
  }
  | { provider: "exec"; command: string[]; timeoutMs: number; zone: string | null }
  | {
    provider: "acme-dns";
    api: string;
    username: string;
    password: string;
    subdomain: string;
    fulldomain: string | null;
  }
  /** A provider this job cannot use (no name of it needs it, or its secret file failed): every call fails. */
  | { provider: "unavailable"; reason: string };

/** Main -> worker. */
export type ToWorker =
  | {
    type: "job";
    jobId: number;
    settings: WorkerSettings;
    /** Each entry is one certificate to obtain: its names, first name first. */
    certificates: string[][];
    /**
     * One entry per `certificates` entry: the RFC 9773 §4.1 certID of the certificate that order replaces,
     * sent as newOrder's `replaces` (§5), or null (a first order, or a CA without renewal information).
     * Absent: no order replaces anything.
     */
    replaces?: Array<string | null>;
    /**
     * One entry per `certificates` entry: the notAfter (ms since the epoch) of the stored certificate the
     * main thread planned from, or null when it saw none. Once it holds the issuance lock, the worker finds
     * a stored certificate newer than that (another instance sharing the store got it meanwhile) and posts
     * it as `adopted` instead of ordering again. Absent: always order.
     */
    known?: Array<number | null>;
  }
  /** The main thread now serves (or no longer serves) the HTTP-01 response asked for by `requestId`. */
  | { type: "http01-ack"; requestId: number };

/** Worker -> main. */
export type FromWorker =
  | {
    type: "issued";
    jobId: number;
    names: string[];
    certPem: string;
    keyPem: string;
    /** ms since the epoch. */
    notAfter: number;
    /**
     * Why the chain could not be written to cert_dir (a full or read-only disk), or null when it was: the
     * main thread then serves it from memory and retries only the write, never a new order for it.
     */
    storeError: string | null;
    /** The directory that issued it, for the main thread's own write (meta.json records it). */
    directoryUrl: string;
    /** Another instance sharing the store obtained it (see `known`): nothing was ordered or written. */
    adopted: boolean;
  }
  | {
    type: "failed";
    jobId: number;
    names: string[];
    /** Safe to log: no token, no key. */
    error: string;
    /** The ACME problem type when the server sent one (urn:ietf:params:acme:error:...). */
    problemType: string | null;
    /** Server-given Retry-After in ms, or null. */
    retryAfterMs: number | null;
    /** When the next attempt may start, ms since the epoch (also stored in the certificate's meta.json). */
    nextAttemptAt: number;
    /** Consecutive failures so far, this one included. */
    failures: number;
  }
  | { type: "log"; level: "debug" | "info" | "warn" | "error"; event: string; fields: Record<string, string> }
  /** Serve `keyAuthorization` at /.well-known/acme-challenge/<token> (publish) or stop (withdraw); ack it. */
  | {
    type: "http01";
    requestId: number;
    action: "publish" | "withdraw";
    token: string;
    keyAuthorization: string;
  }
  | { type: "done"; jobId: number }
  /** An error nothing in the worker caught (worker_crash.ts); the worker closes after sending it. */
  | { type: "crashed"; error: string };
