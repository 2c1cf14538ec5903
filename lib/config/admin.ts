// Reads `admin:`: the listener of /status, /metrics and the dashboard (`listen`), who may sign in to the
// dashboard (`username`, `password_hash`) and the token Prometheus may scrape /metrics with (`metrics_token`).
// Without a password hash the listener serves loopback only: nothing on it may be reachable from elsewhere
// without a sign-in. The dashboard itself lives in lib/dashboard/.

import { readBcryptHash } from "./access.ts";
import { readPath } from "./sections.ts";
import type { AdminConfig, ListenAddress } from "./types.ts";
import { type Field, quoteValue, type Reader } from "./reader.ts";

export const ADMIN_KEYS: readonly string[] = [
  "listen",
  "username",
  "password_hash",
  "metrics_token",
  "traffic_file",
];
const DEFAULT_USERNAME = "admin";

/**
 * Reads `admin:`: null when absent. An address without a host (":9090") binds to loopback. A host that is not
 * loopback needs `password_hash` (the status, metrics and dashboard would be open to anyone who reaches it).
 */
export function readAdmin(
  r: Reader,
  field: Field | undefined,
  options: { readListen: (f: Field) => ListenAddress | undefined; configDir: string },
): AdminConfig | null {
  if (field === undefined || field.value === null) return null;
  const fields = r.readMapping(field, {
    known: ADMIN_KEYS,
    expected: `a mapping like "listen: 127.0.0.1:9090"`,
  });
  const listenField = fields?.get("listen");
  if (listenField === undefined) {
    r.report(field.at, `${field.path} needs a listen address, like "listen: 127.0.0.1:9090"`);
    return null;
  }
  const written = listenField.value === null ? undefined : options.readListen(listenField);
  const username = readUsername(r, fields?.get("username"));
  const passwordHash = readPasswordHash(r, fields?.get("password_hash"));
  const metricsToken = readMetricsToken(r, fields?.get("metrics_token"));
  const trafficField = fields?.get("traffic_file");
  const trafficFile = trafficField === undefined || trafficField.value === null
    ? null
    : readPath(r, trafficField, { configDir: options.configDir, what: "the path of the traffic file" }) ??
      null;
  if (written === undefined || username === undefined || passwordHash === undefined) return null;
  if (metricsToken === undefined) return null;
  const listen = written.hostname === "" ? { hostname: "127.0.0.1", port: written.port } : written;
  if (passwordHash === null && !isLoopbackHost(listen.hostname)) {
    r.report(
      listenField.at,
      `${listenField.path} ${
        quoteValue(`${listen.hostname}:${listen.port}`)
      } is reachable from other machines, ` +
        `and without admin.password_hash anyone there could read /status and /metrics: set ` +
        `admin.password_hash (\`nexo hash-password\` prints one), or listen on 127.0.0.1`,
    );
    return null;
  }
  return { listen, username, passwordHash, metricsToken, trafficFile };
}

/** Whether `hostname` (an IP literal or "localhost") can only be reached from this machine. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/^\[(.*)\]$/, "$1");
  return host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function readUsername(r: Reader, field: Field | undefined): string | undefined {
  if (field === undefined || field.value === null) return DEFAULT_USERNAME;
  const value = r.readString(field)?.trim();
  if (value === undefined) return undefined;
  if (!/^[A-Za-z0-9._@-]{1,64}$/.test(value)) {
    r.report(
      field.at,
      `${field.path} must be 1 to 64 letters, digits, ".", "_", "@" or "-", got ${quoteValue(value)}`,
    );
    return undefined;
  }
  return value;
}

/** A bcrypt hash (as basic_auth users have), null when absent. */
function readPasswordHash(r: Reader, field: Field | undefined): string | null | undefined {
  if (field === undefined || field.value === null) return null;
  return readBcryptHash(r, field);
}

/** A bearer token for /metrics: at least 16 characters, as a generated token has; null when absent. */
function readMetricsToken(r: Reader, field: Field | undefined): string | null | undefined {
  if (field === undefined || field.value === null) return null;
  const value = r.readString(field, { secret: true })?.trim();
  if (value === undefined) return undefined;
  if (!/^[\x21-\x7e]{16,256}$/.test(value)) {
    r.report(
      field.at,
      `${field.path} must be 16 to 256 visible characters without spaces (make one with ` +
        `\`openssl rand -hex 24\`)`,
    );
    return undefined;
  }
  return value;
}
