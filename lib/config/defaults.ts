// Every default the config fills in when the user leaves a key out, in one table with the reason for each
// number. parse.ts applies them; nothing else should hard-code these values.

/** Let's Encrypt's ACME v2 directories (https://letsencrypt.org/docs/acme-protocol-updates/). */
export const LETS_ENCRYPT_DIRECTORY = "https://acme-v02.api.letsencrypt.org/directory";
export const LETS_ENCRYPT_STAGING_DIRECTORY = "https://acme-staging-v02.api.letsencrypt.org/directory";

/**
 * `acme.directory` by name: the public ACME CAs, with their directory URLs as each documents them, and whether
 * it requires External Account Binding (RFC 8555 §7.3.4; `acme.eab`). ZeroSSL and Google Trust Services issue
 * the key id and HMAC key in their dashboards; Let's Encrypt needs none.
 */
export const ACME_PRESETS: Readonly<Record<string, { url: string; eab: boolean; eabHelp?: string }>> = {
  "letsencrypt": { url: LETS_ENCRYPT_DIRECTORY, eab: false },
  "letsencrypt-staging": { url: LETS_ENCRYPT_STAGING_DIRECTORY, eab: false },
  "zerossl": {
    url: "https://acme.zerossl.com/v2/DV90",
    eab: true,
    eabHelp: "ZeroSSL's dashboard, Developer, EAB Credentials for ACME Clients",
  },
  "google": {
    url: "https://dv.acme-v02.api.pki.goog/directory",
    eab: true,
    eabHelp: "gcloud publicca external-account-keys create",
  },
  "google-staging": {
    url: "https://dv.acme-v02.test-api.pki.goog/directory",
    eab: true,
    eabHelp: "gcloud publicca external-account-keys create, with the staging endpoint",
  },
};

/** Cloudflare's v4 REST API base, without a trailing slash. */
export const CLOUDFLARE_API_BASE = "https://api.cloudflare.com/client/v4";

/**
 * Defaults for keys the user may leave out. Durations in ms, sizes in bytes.
 *
 * Why these numbers: renewing 30 days (720h) before expiry is what Let's Encrypt recommends for its 90-day
 * certificates and leaves weeks of retries; checking daily and retrying hourly keeps well inside its rate
 * limits. Request limits follow common reverse-proxy practice: 10MiB bodies cover form posts and API
 * payloads without letting a client fill memory, 16KiB of headers is what Deno 2.9.6's HTTP/2 server lets
 * through at most (so one limit holds on both protocols; browsers send a few KiB), a 30s read
 * timeout cuts slow-loris clients, a 120s idle timeout outlives browsers' own keep-alive (which tops out
 * around 115s in Firefox), and 30s for an upstream's response headers is past what a healthy app needs.
 */
export const DEFAULTS = {
  baseDir: "/etc/nexo",
  certDirName: "certs",
  listen: { hostname: "", port: 443 },
  publicHttpsPort: 443,
  staging: false,
  issuer: "acme",
  renewBeforeMs: 720 * 3_600_000,
  checkIntervalMs: 24 * 3_600_000,
  retryIntervalMs: 3_600_000,
  propagationTimeoutMs: 2 * 60_000,
  /** lego's exec provider waits as long for its script; a DNS API call that takes longer is stuck. */
  execTimeoutMs: 60_000,
  maxBodyBytes: 10 * 1024 ** 2,
  maxHeaderBytes: 16 * 1024,
  readTimeoutMs: 30_000,
  idleTimeoutMs: 120_000,
  responseTimeoutMs: 30_000,
  /**
   * Five minutes, Envoy's default stream idle timeout: long-polls (typically under 2 minutes) and event
   * streams with heartbeats (15 to 60 s; ntfy's is 45 s) pass, where nginx's 60 s proxy_read_timeout is a
   * common cause of cut streams; an upstream that stalls mid-body still cannot hold sockets for ever.
   */
  bodyTimeoutMs: 300_000,
  cache: true,
  accessLog: true,
  redirectStatus: 302,
  keepPath: false,
} as const;
