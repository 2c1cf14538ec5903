// Warnings about a valid config: settings that are accepted but will not do all they say, on this runtime or
// for these certificates. The server logs them at start and on every reload, `nexo check` prints them (with
// the config file's mode, which needs the file system). Problems that make a config invalid are the
// parser's errors, not warnings. It changes nothing.

import { isLoopbackHost } from "./config/admin.ts";
import { renewalWindowNote } from "./acme/schedule.ts";
import { findExposedSecretFiles, formatMode } from "./config/file_mode.ts";
import type { Config } from "./config/types.ts";
import { isoTime } from "./iso_time.ts";

/** One warning: the config key it is about and a sentence saying what happens and what to do. */
export interface ConfigWarning {
  key: string;
  message: string;
}

/**
 * Request-head sizes Deno 2.9.6 refuses before nexo sees the request: over HTTP/2 it advertises
 * SETTINGS_MAX_HEADER_LIST_SIZE 16384 and answers a larger list with a bare 431 (measured: a 16,000-byte
 * header passes, 16,300 does not); over HTTP/1.1 hyper answers 400 to a head over 65,536 bytes. Neither is
 * configurable from JavaScript.
 */
export const HTTP2_HEADER_LIMIT_BYTES = 16 * 1024;
export const HTTP1_HEADER_LIMIT_BYTES = 64 * 1024;

/** Let's Encrypt's certificate lifetime today, what `renew_before` is checked against before any exists. */
const LETS_ENCRYPT_LIFETIME_MS = 90 * 24 * 3_600_000;
/** An HSTS max-age longer than this on a development name is worth a word (a day). */
const DEV_HSTS_MAX_AGE_S = 86_400;

/** Every warning `config` alone gives, in a stable order; empty when there is nothing to say. */
export function configWarnings(config: Config): ConfigWarning[] {
  const warnings: ConfigWarning[] = [];
  const maxHeader = config.limits.maxHeaderBytes;
  if (maxHeader > HTTP2_HEADER_LIMIT_BYTES) {
    const over = maxHeader > HTTP1_HEADER_LIMIT_BYTES
      ? "over HTTP/1.1 Deno refuses heads past 64 KiB with 400, and over HTTP/2"
      : "over HTTP/2";
    warnings.push({
      key: "limits.max_header",
      message: `${maxHeader} bytes is more than Deno lets through: ${over} past 16 KiB with a bare 431 ` +
        `before nexo sees the request (set it to 16KiB or less for one limit on both protocols)`,
    });
  }
  if (config.issuer === "acme") {
    const note = renewalWindowNote(LETS_ENCRYPT_LIFETIME_MS, config.acme.renewBeforeMs);
    if (note !== null) {
      warnings.push({
        key: "acme.renew_before",
        message: `for a 90-day Let's Encrypt certificate, ${note} (renewal never starts earlier than half ` +
          `a lifetime before expiry; set it to 1080h or less to have it apply as written)`,
      });
    }
  }
  warnings.push(...signInWarnings(config));
  warnings.push(...upstreamTlsWarnings(config, Date.now()));
  const admin = config.admin;
  if (admin !== null && admin.passwordHash !== null && !isLoopbackHost(admin.listen.hostname)) {
    warnings.push({
      key: "admin.listen",
      message: `${admin.listen.hostname}:${admin.listen.port} is plain HTTP: the dashboard's password and ` +
        `session cookie cross the network unencrypted to anyone on the path (serve it on a route with ` +
        `admin: true, which is HTTPS, or reach a loopback admin.listen through an SSH tunnel)`,
    });
  }
  for (const route of config.routes) {
    const maxAge = Number(/max-age=(\d+)/.exec(route.hsts ?? "")?.[1] ?? 0);
    if (isDevelopmentName(route.host) && maxAge > DEV_HSTS_MAX_AGE_S) {
      warnings.push({
        key: `proxies."${route.host}".hsts`,
        message: `browsers will use https for ${route.host} on every port for ${maxAge} s, plain-HTTP dev ` +
          `servers on that name included (give it "hsts: {max_age: 5m}", or "hsts: false")`,
      });
    }
  }
  return warnings;
}

/** GitHub sign-in set up to no end, or sending its secret where anyone on the path could read it. */
function signInWarnings(config: Config): ConfigWarning[] {
  const auth = config.auth;
  if (auth === null) return [];
  const warnings: ConfigWarning[] = [];
  if (!config.routes.some((route) => route.access?.githubAuth)) {
    warnings.push({
      key: "auth",
      message: `no route has github_auth, so ${auth.host} signs nobody in (add github_auth to a route, or ` +
        `remove auth)`,
    });
  }
  for (
    const [key, url] of [["api_base", auth.github?.apiBase], ["oauth_base", auth.github?.oauthBase]] as const
  ) {
    if (url === undefined || url.protocol !== "http:" || isLoopback(url.hostname)) continue;
    warnings.push({
      key: `auth.github.${key}`,
      message: `${url.origin} is plain http: the client secret, sign-in codes and tokens would cross the ` +
        `network unencrypted (use https)`,
    });
  }
  return warnings;
}

/** A client certificate this close to its end is worth a word at every start and reload. */
const CLIENT_CERT_WARN_MS = 30 * 86_400_000;

/** Upstreams whose certificate nobody checks, and client certificates that expired or soon will. */
export function upstreamTlsWarnings(config: Config, nowMs: number): ConfigWarning[] {
  const warnings: ConfigWarning[] = [];
  for (const route of config.routes) {
    if (route.kind !== "proxy" || route.upstreamTls === null) continue;
    const key = `proxies."${route.host}".upstream_tls`;
    if (route.upstreamTls.insecureSkipVerify) {
      warnings.push({
        key: `${key}.insecure_skip_verify`,
        message: `nexo does not verify the certificate of ${
          route.upstreams.map((url) => url.host).join(", ")
        }: ` +
          `anyone on the network path can read and change this route's traffic, passwords and cookies ` +
          `included (set ca_file to the CA that signed it instead)`,
      });
    }
    const notAfter = route.upstreamTls.material?.clientCertNotAfter ?? null;
    if (notAfter === null || notAfter.getTime() - nowMs > CLIENT_CERT_WARN_MS) continue;
    const date = isoTime(notAfter).slice(0, 10);
    const days = Math.ceil((notAfter.getTime() - nowMs) / 86_400_000);
    const when = notAfter.getTime() <= nowMs
      ? `expired on ${date}: upstreams that check it refuse nexo`
      : `expires on ${date}, in ${days} day${days === 1 ? "" : "s"}`;
    warnings.push({
      key: `${key}.client_cert_file`,
      message: `${route.upstreamTls.clientCertFile} ${when} (renew it, then reload nexo with SIGHUP)`,
    });
  }
  return warnings;
}

function isLoopback(hostname: string): boolean {
  return hostname === "localhost" || hostname === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

/** `configWarnings()` plus the config files holding a secret that others may read (for `check`). */
export async function allConfigWarnings(config: Config): Promise<ConfigWarning[]> {
  const exposed = await findExposedSecretFiles(config);
  return [
    ...configWarnings(config),
    ...exposed.map((file) => ({
      key: file.secret,
      message: `${file.file} (mode ${
        formatMode(file.mode)
      }) holds it and other users can read it: ${file.fix}`,
    })),
  ];
}

/** Names that are local by definition (RFC 6761 §6.3): HSTS pinned there follows a developer everywhere. */
function isDevelopmentName(host: string): boolean {
  return host === "localhost" || host.endsWith(".localhost");
}
