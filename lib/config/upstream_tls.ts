// A proxy route's `upstream_tls` (issue 16): how nexo verifies its https upstreams (a private CA, the name
// to verify) and authenticates to them (a client certificate for mTLS), or, warned about, does not verify.
// Validated into plain data here; the files are read by upstream_tls_files.ts when the config is loaded.

import type { UpstreamTls } from "./types.ts";
import { normalizeHostname } from "./hostname.ts";
import type { Field, Reader } from "./reader.ts";
import { readPath } from "./sections.ts";

/** The route key this module reads. */
export const UPSTREAM_TLS_KEY = "upstream_tls";

const KEYS = [
  "ca_file",
  "server_name",
  "client_cert_file",
  "client_key_file",
  "insecure_skip_verify",
] as const;
const EXAMPLE = "{ ca_file: /etc/nexo/internal-ca.pem, server_name: app.internal }";
const PEM_FILE = "the path of a PEM file";

/**
 * Reads `upstream_tls` for a route proxying to `upstreams`: null when absent or empty, undefined when invalid
 * (reported). Every upstream must be https://, and a client certificate comes with its key.
 */
export function readUpstreamTls(
  r: Reader,
  f: Field | undefined,
  upstreams: readonly URL[],
  configDir: string,
): UpstreamTls | null | undefined {
  if (f === undefined || f.value === null) return null;
  const fields = r.readMapping(f, { known: KEYS, expected: `a mapping like ${EXAMPLE}` });
  if (fields === null) return undefined;
  if (fields.size === 0) return null;
  const issuesBefore = r.issues.length;
  const file = (key: string) => readPath(r, fields.get(key), { configDir, what: PEM_FILE }) ?? null;
  const caFile = file("ca_file");
  const clientCertFile = file("client_cert_file");
  const clientKeyFile = file("client_key_file");
  const serverNameField = fields.get("server_name");
  const serverName = serverNameField === undefined ? null : readServerName(r, serverNameField);
  const skipField = fields.get("insecure_skip_verify");
  const insecureSkipVerify = skipField === undefined ? false : r.readBool(skipField);

  for (const url of upstreams) {
    if (url.protocol === "https:") continue;
    r.report(
      f.keyNode,
      `${f.path} applies to https:// upstreams, and ${url.href} is plain http://; write https:// if it ` +
        `speaks TLS, or remove ${UPSTREAM_TLS_KEY}`,
    );
  }
  const certField = fields.get("client_cert_file");
  const keyField = fields.get("client_key_file");
  if ((certField === undefined) !== (keyField === undefined)) {
    const [given, missing] = certField === undefined
      ? ["client_key_file", "client_cert_file"]
      : ["client_cert_file", "client_key_file"];
    r.report(
      (certField ?? keyField)!.keyNode,
      `${f.path}.${given} needs ${missing} too: a client certificate is presented with its private key`,
    );
  }
  if (insecureSkipVerify === true && fields.has("ca_file")) {
    r.report(
      fields.get("ca_file")!.keyNode,
      `${f.path}.ca_file is never used with insecure_skip_verify: true, which verifies nothing; remove ` +
        `insecure_skip_verify to verify against the CA (the safe choice), or remove ca_file`,
    );
  }
  if (r.issues.length > issuesBefore || insecureSkipVerify === undefined) return undefined;
  return {
    caFile,
    serverName,
    clientCertFile,
    clientKeyFile,
    insecureSkipVerify,
    position: r.positionOf(f.keyNode),
    material: null,
  };
}

function readServerName(r: Reader, f: Field): string | null {
  const text = r.readString(f);
  if (text === undefined) return null;
  try {
    return normalizeHostname(text);
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    r.report(f.at, `${f.path}: ${error.message} (the name in the upstream's certificate, like app.internal)`);
    return null;
  }
}
