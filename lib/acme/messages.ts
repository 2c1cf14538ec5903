// The typed protocol between the main thread (supervisor.ts) and the ACME worker (worker.ts). Messages are
// plain structured-clone data. Private keys cross this boundary only inside `issued` (the main thread must
// serve them); tokens cross it only inside `job` (the worker must use them). Neither is ever logged.

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
  cloudflare: { apiToken: string; apiBase: string; zoneId: string | null } | null;
  /** "host:port" resolvers for propagation checks; empty: the zone's authoritative servers. */
  dnsResolvers: string[];
  /** Bound on waiting for a TXT record to become visible, ms. */
  propagationTimeoutMs: number;
}

/** Main -> worker. */
export type ToWorker = {
  type: "job";
  jobId: number;
  settings: WorkerSettings;
  /** Each entry is one certificate to obtain: its names, first name first. */
  certificates: string[][];
};

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
  }
  | { type: "log"; level: "debug" | "info" | "warn" | "error"; event: string; fields: Record<string, string> }
  | { type: "done"; jobId: number };
