// The files `upstream_tls` names, read when the config is loaded (`nexo check`, start, every reload): a file
// that is missing, unreadable, not PEM, or a client key that does not belong to its certificate is a config
// error at the `upstream_tls` line, so a bad reload never replaces a working config. What is read becomes
// the route's UpstreamTlsMaterial, which never serializes its key.

import type { Config, UpstreamTls, UpstreamTlsMaterial } from "./types.ts";
import type { ConfigIssue } from "./errors.ts";
import {
  CertificateError,
  checkKeyMatchesCertificate,
  parseCertificate,
  splitCertificateChain,
} from "../tls/pem.ts";
import { errorMessage } from "../error_message.ts";
import { unreadableReason } from "./unreadable.ts";

const PEM_WORDING = { missing: "check the path", kind: "a PEM file", noun: "the file" };

/**
 * Reads the files of every route's `upstream_tls` into its `material`. Returns the problems found, each at
 * its route's `upstream_tls`; the routes' material is then incomplete and the config must not be used.
 */
export async function loadUpstreamTlsFiles(config: Config): Promise<ConfigIssue[]> {
  const issues: ConfigIssue[] = [];
  const texts = new Map<string, Promise<string>>();
  const read = (path: string) => {
    let text = texts.get(path);
    if (text === undefined) texts.set(path, text = Deno.readTextFile(path));
    return text;
  };
  for (const route of config.routes) {
    if (route.kind !== "proxy" || route.upstreamTls === null) continue;
    const tls = route.upstreamTls;
    const where = `proxies."${route.host}".upstream_tls`;
    try {
      tls.material = await loadMaterial(tls, read);
    } catch (error) {
      if (!(error instanceof UnusableFile)) throw error;
      issues.push({ ...tls.position, message: `${where}.${error.key}: ${error.message}` });
    }
  }
  return issues;
}

/** A file `upstream_tls` names that cannot be used; the message names the file, never its contents. */
class UnusableFile extends Error {
  constructor(readonly key: string, message: string) {
    super(message);
  }
}

async function loadMaterial(
  tls: UpstreamTls,
  read: (path: string) => Promise<string>,
): Promise<UpstreamTlsMaterial> {
  const load = async (key: string, path: string) => {
    try {
      return await read(path);
    } catch (error) {
      const reason = unreadableReason(error, PEM_WORDING) ?? errorMessage(error);
      throw new UnusableFile(key, `cannot read ${path}: ${reason}`);
    }
  };
  const check = async (key: string, work: () => unknown) => {
    try {
      await work();
    } catch (error) {
      if (!(error instanceof CertificateError)) throw error;
      throw new UnusableFile(key, error.message);
    }
  };
  const caCerts: string[] = [];
  if (tls.caFile !== null) {
    const text = await load("ca_file", tls.caFile);
    await check("ca_file", () => {
      for (const block of splitCertificateChain(text, tls.caFile!)) caCerts.push(block.text);
    });
  }
  let clientCert: { cert: string; key: string } | null = null;
  let clientCertNotAfter: Date | null = null;
  if (tls.clientCertFile !== null && tls.clientKeyFile !== null) {
    const cert = await load("client_cert_file", tls.clientCertFile);
    const key = await load("client_key_file", tls.clientKeyFile);
    await check("client_cert_file", () => {
      clientCertNotAfter = parseCertificate(cert, tls.clientCertFile!).notAfter;
    });
    await check("client_key_file", () =>
      checkKeyMatchesCertificate(cert, key, {
        certSource: tls.clientCertFile!,
        keySource: tls.clientKeyFile!,
      }));
    clientCert = { cert, key };
  }
  const id = await fingerprint([
    tls.serverName ?? "",
    String(tls.insecureSkipVerify),
    ...caCerts,
    clientCert?.cert ?? "",
    clientCert?.key ?? "",
  ]);
  return new LoadedUpstreamTls(
    id,
    caCerts,
    tls.serverName,
    clientCert,
    tls.insecureSkipVerify,
    clientCertNotAfter,
  );
}

/**
 * UpstreamTlsMaterial that keeps the client certificate in a private field: JSON.stringify and structured
 * clone (a message to the ACME worker) see only `id` and the public settings, never the key.
 */
class LoadedUpstreamTls implements UpstreamTlsMaterial {
  readonly #clientCert: { cert: string; key: string } | null;

  constructor(
    readonly id: string,
    readonly caCerts: readonly string[],
    readonly serverName: string | null,
    clientCert: { cert: string; key: string } | null,
    readonly insecureSkipVerify: boolean,
    readonly clientCertNotAfter: Date | null,
  ) {
    this.#clientCert = clientCert;
  }

  get clientCert(): { cert: string; key: string } | null {
    return this.#clientCert;
  }

  toJSON(): { id: string } {
    return { id: this.id };
  }
}

/** SHA-256 of the parts, hex, first 16 bytes: an identity for pool keys, not a secret-bearing value. */
async function fingerprint(parts: string[]): Promise<string> {
  const bytes = new TextEncoder().encode(parts.join("\0"));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return digest.subarray(0, 16).toHex();
}
