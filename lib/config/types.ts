// The resolved configuration: what the rest of nexo reads after lib/config/parse.ts has validated the user's
// YAML and filled in every default. Nothing here is optional that has a default; nothing here is parsed.
// The user's own format (snake_case keys, durations like "30s", sizes like "10MiB") lives only in parse.ts.

/** Where a value came from in the config file, for error messages (1-based line and column). */
export interface SourcePosition {
  file: string;
  line: number;
  col: number;
}

/** A listen address: `host` is "" for all interfaces (":443"). */
export interface ListenAddress {
  hostname: string;
  port: number;
}

/** Per-route limits and timeouts, after the global `limits` block and route overrides are merged. */
export interface RouteLimits {
  /** Largest request body accepted, in bytes; more gets 413. */
  maxBodyBytes: number;
  /** Time to wait for the upstream's response headers, in ms; past it the client gets 504. */
  responseTimeoutMs: number;
  /**
   * Longest wait for the next bytes of the upstream's response body, in ms; past it the body is cut off (504
   * when nothing was sent yet) and both connections are freed.
   */
  bodyTimeoutMs: number;
}

/** A token bucket per client address: `burst` requests at once, refilled at `requests` per `perMs`. */
export interface RateLimit {
  requests: number;
  perMs: number;
  burst: number;
}

/** `forward_auth`: the auth server asked about each request (lib/access/forward_auth.ts). */
export interface ForwardAuth {
  /** Where the GET goes (http or https). */
  url: URL;
  /** Header names (lowercased) copied from the auth server's 2xx onto the upstream request. */
  copyHeaders: string[];
  /** Time allowed for the auth server's whole answer, in ms. */
  timeoutMs: number;
}

/** `basic_auth`: users and their bcrypt hashes (lib/access/basic_auth.ts). */
export interface BasicAuth {
  /** User name -> bcrypt hash ($2a$, $2b$ or $2y$, cost 4-14). */
  users: Record<string, string>;
  /** The realm browsers show in their sign-in prompt. */
  realm: string;
  /** Whether the Authorization header reaches the upstream (false: removed once checked). */
  passCredentials: boolean;
}

/** `github_auth`: who may sign in with GitHub to reach a route (lib/access/github_auth.ts). */
export interface GitHubAuth {
  /** GitHub logins, lowercased (GitHub compares them case-insensitively). Never empty. */
  allowedUsers: string[];
}

/** `auth.github`: the GitHub OAuth app nexo signs users in with. */
export interface GitHubApp {
  clientId: string;
  /** A secret: never log it or put it in an error message. */
  clientSecret: string;
  /** The REST API (`GET /user`); https://api.github.com unless a test points it elsewhere. */
  apiBase: URL;
  /** Where the OAuth pages live (`/login/oauth/authorize`, `/login/oauth/access_token`); https://github.com. */
  oauthBase: URL;
}

/** `auth:`: the sign-in host shared by every route with `github_auth`. */
export interface SignInConfig {
  /** The exact host serving /oauth2/start and /oauth2/callback (a route of kind "sign-in"). */
  host: string;
  github: GitHubApp | null;
  /** How long a signed-in session lasts, in ms. */
  sessionTtlMs: number;
}

/**
 * A route's access rules, checked in this order: `deny`, `allow`, `rateLimit`, then sign-in: `basicAuth`,
 * `githubAuth`, `forwardAuth`.
 */
export interface RouteAccess {
  /** CIDRs or addresses; null: every client (that `deny` does not refuse). Never empty. */
  allow: string[] | null;
  deny: string[];
  rateLimit: RateLimit | null;
  basicAuth: BasicAuth | null;
  githubAuth: GitHubAuth | null;
  forwardAuth: ForwardAuth | null;
}

interface RouteBase {
  /** The route key, lowercased: "api.example.com" or "*.example.com". */
  host: string;
  /** Whether a one-line access-log entry is written for each request. */
  accessLog: boolean;
  /**
   * The Strict-Transport-Security value nexo puts on every HTTPS response for this route (proxied, redirect,
   * its own error pages), replacing an upstream's own; computed once at load. null (`hsts: false`): nexo
   * sends none and passes an upstream's own untouched. Never sent over plain HTTP (RFC 6797 §7.2).
   */
  hsts: string | null;
  /** Who may reach the route (`allow`, `deny`, `rate_limit`); null when it sets none of them. */
  access: RouteAccess | null;
  /** Position of the route key in the config file. */
  position: SourcePosition;
}

/** How a route with several upstreams picks one for a request (lib/balance/). */
export type LbPolicy = "round_robin" | "least_conn" | "ip_hash" | "cookie" | "first";

/** An inclusive range of HTTP statuses: `2xx` is 200-299, `204` is 204-204. */
export interface StatusRange {
  min: number;
  max: number;
}

/** `health_check`: a request nexo sends each upstream on a timer, off the request path. */
export interface HealthCheck {
  /** Path (and query) asked with GET, starting with "/". */
  path: string;
  intervalMs: number;
  timeoutMs: number;
  /** The statuses that count as healthy. */
  status: StatusRange;
  /** Passed checks in a row that bring a down upstream back. */
  healthyAfter: number;
  /** Failed checks in a row that take an upstream out. */
  unhealthyAfter: number;
}

/** `passive_health`: an upstream whose requests fail `maxFails` times within `failWindowMs` rests that long. */
export interface PassiveHealth {
  maxFails: number;
  failWindowMs: number;
}

/** What a retry may follow: an upstream that could not be reached, one too slow, or a status it answered. */
export type RetryCondition = "connect_error" | "timeout" | number;

/** `retry`: how many upstreams one request may try in all, and after which failures. */
export interface RetryPolicy {
  /** Attempts in all, the first included (1: no retry). */
  tries: number;
  on: RetryCondition[];
}

/** A route's load balancing, health and retry settings; null on a route with one upstream and none set. */
export interface Balancing {
  lb: LbPolicy;
  healthCheck: HealthCheck | null;
  passiveHealth: PassiveHealth | null;
  retry: RetryPolicy;
}

/**
 * `upstream_tls`: how nexo's connections to a route's https upstreams are verified and authenticated. Paths
 * are absolute; the files are read by `loadConfig()` into `material`.
 */
export interface UpstreamTls {
  /** PEM file of the CA(s) trusted for these upstreams, besides the default roots; null for the roots alone. */
  caFile: string | null;
  /** The name sent as SNI and verified in the upstream's certificate; null: the upstream URL's host. */
  serverName: string | null;
  /** PEM client certificate (and its chain) presented to an upstream that asks for one (mTLS), or null. */
  clientCertFile: string | null;
  /** The client certificate's PEM private key; set exactly when `clientCertFile` is. */
  clientKeyFile: string | null;
  /** No verification of the upstream's certificate at all; `nexo check` warns about it. */
  insecureSkipVerify: boolean;
  /** Where `upstream_tls` is written: problems with the files, found when they are read, point here. */
  position: SourcePosition;
  /** The files' contents: set by `loadConfig()`; null after `parseConfig()` alone, which reads no file. */
  material: UpstreamTlsMaterial | null;
}

/**
 * What a TLS connection to an upstream is made with, from `upstream_tls` and its files. It holds a private
 * key: it serializes (JSON, structured clone) to `{ id }` alone, so that no log, diff or worker message
 * carries the key.
 */
export interface UpstreamTlsMaterial {
  /**
   * Fingerprint of the settings and the files' contents: pooled connections are shared only between requests
   * with the same one, so a connection authenticated with a client certificate never serves another route.
   */
  readonly id: string;
  /** PEM certificates trusted besides the default roots. */
  readonly caCerts: readonly string[];
  readonly serverName: string | null;
  /** PEM certificate chain and private key for mTLS, or null. A secret. */
  readonly clientCert: { readonly cert: string; readonly key: string } | null;
  readonly insecureSkipVerify: boolean;
  /** When the client certificate expires, or null without one. */
  readonly clientCertNotAfter: Date | null;
}

export interface ProxyRoute extends RouteBase {
  kind: "proxy";
  /**
   * Absolute http(s) URLs, at least one, in the order written; each one's path is the base path prefixed to
   * every request path.
   */
  upstreams: URL[];
  /** How `upstreams` share the requests; null for one upstream without `lb`, health checks or retries. */
  balancing: Balancing | null;
  /** How https upstreams are verified (`upstream_tls`); null: against the default roots, by the URL's host. */
  upstreamTls: UpstreamTls | null;
  /** When false, response headers pass untouched (no Cache-Control is added). */
  cache: boolean;
  limits: RouteLimits;
}

export type RedirectStatus = 301 | 302 | 303 | 307 | 308;

export interface RedirectRoute extends RouteBase {
  kind: "redirect";
  /** Absolute URL; "https://" was added when the user wrote none. */
  target: URL;
  status: RedirectStatus;
  /** When true, the request's path and query are appended to the target's path. */
  keepPath: boolean;
}

/**
 * `auth.host`: nexo's own sign-in pages (GitHub's OAuth start and callback), added by parse.ts so that the
 * host is routed and certified like any other. Never proxied; it has no access rules.
 */
export interface SignInRoute extends RouteBase {
  kind: "sign-in";
}

/**
 * `admin: true`: nexo's dashboard (and /status, /metrics behind its sign-in) on this host, over HTTPS with the
 * host's certificate. Needs `admin.password_hash`; never proxied.
 */
export interface AdminRoute extends RouteBase {
  kind: "admin";
}

export type Route = ProxyRoute | RedirectRoute | SignInRoute | AdminRoute;

export type Issuer = "acme" | "internal";

export interface AcmeConfig {
  /** ACME directory URL; defaults to Let's Encrypt production, or staging when `staging: true`. */
  directory: string;
  /** Path of a PEM file with extra CA certificates trusted for the ACME server's TLS, or null. */
  caCert: string | null;
  renewBeforeMs: number;
  checkIntervalMs: number;
  retryIntervalMs: number;
  /** How long one DNS-01 TXT record may take to become visible at the name servers before the attempt fails. */
  propagationTimeoutMs: number;
  /** "host:port" or "host" (port 53) resolvers for DNS propagation checks; empty = authoritative servers. */
  dnsResolvers: string[];
  /** Key type of new certificates: ECDSA P-256 (the default) or RSA-2048 for old clients. */
  keyType: "ecdsa" | "rsa";
  /**
   * External Account Binding (RFC 8555 §7.3.4), sent when nexo registers its account, for CAs that require
   * it (ZeroSSL, Google Trust Services); null when not set.
   */
  eab: ExternalAccountBinding | null;
  /**
   * `acme.issuers` after the first (which is `directory`, `eab` and `caCert` above): the CAs tried in turn for
   * a certificate the previous one failed to issue; empty without `acme.issuers`.
   */
  fallbacks: AcmeIssuer[];
}

/** One CA of `acme.issuers`. */
export interface AcmeIssuer {
  /** ACME directory URL. */
  directory: string;
  eab: ExternalAccountBinding | null;
  /** Extra CA certificates (PEM file) for this CA's TLS, or null. */
  caCert: string | null;
}

/** A CA's key id and HMAC key for External Account Binding. */
export interface ExternalAccountBinding {
  kid: string;
  /** The HMAC key, base64url as the CA issues it. A secret: never log it or put it in an error message. */
  hmacKey: string;
}

/** `dns: { provider: rfc2136, rfc2136: ... }`: dynamic updates (RFC 2136) signed with a TSIG key. */
export interface Rfc2136Config {
  /** The primary server's address (an IP) and port. */
  server: { hostname: string; port: number };
  /** The key's name, as the server's `key` clause names it. */
  tsigKey: string;
  /** The file holding the secret (a `tsig-keygen` key file or the base64 alone); read for each job. */
  tsigSecretFile: string;
  /** "hmac-sha256" (default), "hmac-sha384", "hmac-sha512" or "hmac-sha1". */
  tsigAlgorithm: "hmac-sha1" | "hmac-sha256" | "hmac-sha384" | "hmac-sha512";
  /** The zone to update; null: found by asking the server for SOA records up each name. */
  zone: string | null;
  /** Where tsig_secret_file is written, for errors about the file. */
  position: SourcePosition;
}

/** `dns: { provider: exec }`: a program run as `command... present|cleanup FQDN. VALUE` (lego's exec protocol). */
export interface ExecDnsConfig {
  /** The program (an absolute path: the ACME worker may run exactly it) and its fixed arguments. */
  command: string[];
  /** How long one run may take before it is killed, in ms. */
  timeoutMs: number;
  /** The zone the program manages, when set; null: found through NS queries. */
  zone: string | null;
  /** Where the command is written, for errors about the program. */
  position: SourcePosition;
}

/** `dns: { provider: acme-dns }`: joohoi/acme-dns, reached through `_acme-challenge` CNAMEs to its domain. */
export interface AcmeDnsConfig {
  /** The acme-dns server's API base URL ("https://auth.example.org"). */
  api: string;
  username: string;
  /** The file holding the account's password (a secret); read for each job. */
  passwordFile: string;
  /** The account's subdomain (a UUID), as /register returned it. */
  subdomain: string;
  /** "<subdomain>.<acme-dns domain>" as /register returned it, or null: where the TXT records really live. */
  fulldomain: string | null;
  /** Where password_file is written, for errors about the file. */
  position: SourcePosition;
}

/** One DNS provider and its settings, as one `dns:` block (or one `dns.zones` entry) names it. */
export type DnsProviderConfig =
  | { provider: "cloudflare"; cloudflare: CloudflareConfig }
  | { provider: "rfc2136"; rfc2136: Rfc2136Config }
  | { provider: "exec"; exec: ExecDnsConfig }
  | { provider: "acme-dns"; acmeDns: AcmeDnsConfig };

/** `dns:`: a provider for every name, and/or one per zone (`dns.zones`), the most specific zone winning. */
export interface DnsConfig {
  /** The provider for names no zone entry covers; null when `dns.zones` alone is set. */
  default: DnsProviderConfig | null;
  /** `dns.zones`: zone apex (lowercase, no trailing dot) and its provider, longest zone first. */
  zones: Array<{ zone: string; provider: DnsProviderConfig }>;
}

export interface CloudflareConfig {
  /** The API token. A secret: never log it or put it in an error message. */
  apiToken: string;
  apiBase: string;
  /** Zone id to use instead of looking the zone up by name, or null. */
  zoneId: string | null;
}

/** Server-wide limits; routes may override `maxBodyBytes`, `responseTimeoutMs` and `bodyTimeoutMs`. */
export interface ServerLimits extends RouteLimits {
  /** Largest total size of request headers, in bytes; more gets 431. */
  maxHeaderBytes: number;
  /**
   * A request body that sends nothing for this long, in ms, is cut off with 408. Meant for request heads too,
   * but Deno 2.9.6's HTTP server has no timer for those (README, "limits").
   */
  readTimeoutMs: number;
  /** Time an idle keep-alive connection is kept open, in ms: validated, not enforced on Deno 2.9.6 (README). */
  idleTimeoutMs: number;
}

/** `admin:`: the admin listener and who may sign in to its dashboard. */
export interface AdminConfig {
  /** Loopback unless `password_hash` is set (config/admin.ts refuses otherwise). */
  listen: ListenAddress;
  /** Who signs in to the dashboard; default "admin". */
  username: string;
  /** bcrypt hash of the dashboard password, or null: no dashboard, and /status and /metrics on loopback only. */
  passwordHash: string | null;
  /** A bearer token /metrics accepts besides a dashboard session (Prometheus); a secret. Null when unset. */
  metricsToken: string | null;
  /** Where the dashboard's traffic history is kept across restarts (`admin.traffic_file`), or null. */
  trafficFile: string | null;
}

/** `storage:`: state shared by several nexo instances (Redis). */
export interface StorageConfig {
  redis: {
    /** redis:// or rediss:// URL. May hold a password: a secret, never logged (use RespClient's label). */
    url: string;
    /** Key namespace, so one Redis can hold several clusters. */
    prefix: string;
    /** A file holding the password, when the URL has none; checked at load. */
    passwordFile: string | null;
    /** Extra CA certificate (PEM file) trusted for rediss://, or null. */
    caCert: string | null;
  };
  /** A file holding the AES-256 key private keys are encrypted with in the store, or null. */
  encryptionKeyFile: string | null;
  position: SourcePosition;
}

export interface Config {
  /** Absolute path of the file this was read from. */
  file: string;
  baseDir: string;
  certDir: string;
  email: string | null;
  listen: ListenAddress;
  httpListen: ListenAddress | null;
  /**
   * The HTTPS port clients reach nexo on, for http_listen's redirects (`public_https_port`, default 443):
   * behind port mapping (Docker `-p 443:8443`) the bound port is not the one to send browsers to.
   */
  publicHttpsPort: number;
  staging: boolean;
  issuer: Issuer;
  acme: AcmeConfig;
  /**
   * The DNS providers answering DNS-01 challenges (`dns:`, or the top-level `cloudflare:` shorthand), or null
   * when none is configured (HTTP-01 through `http_listen`, or `issuer: internal`).
   */
  dns: DnsConfig | null;
  /** Lowercased "*.example.com" entries. */
  wildcards: string[];
  limits: ServerLimits;
  /**
   * Networks ("10.0.0.0/8", a bare address) whose requests may carry X-Forwarded-For, X-Real-IP and Forwarded
   * for others (a CDN, a load balancer); validated by parse.ts. Empty: every client speaks for itself.
   */
  trustedProxies: string[];
  /** Networks refused (403) on every route and for unknown hosts too, before anything else; top-level `deny`. */
  deny: string[];
  /** `auth:`, the sign-in host for `github_auth` routes; null when not set. */
  auth: SignInConfig | null;
  /** Where /status, /metrics and the dashboard are served (plain HTTP), or null when `admin:` is not set. */
  admin: AdminConfig | null;
  /**
   * Where certificates, ACME accounts and locks live when several instances share them (`storage:`); null:
   * files in cert_dir and base_dir, and no Redis code is loaded.
   */
  storage: StorageConfig | null;
  /** In file order; keys are unique case-insensitively. */
  routes: Route[];
}
