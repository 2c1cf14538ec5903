// The ACME Renewal Information certificate identifier (RFC 9773 §4.1): which certificate a renewalInfo
// request or a newOrder's `replaces` (§5) is about. Pure: reads the leaf of a PEM chain with nexo's own
// X.509 reader (lib/tls/cert_fields.ts), no I/O. When to renew is ari_schedule.ts's concern.

import { type ParsedCertificate, readCertificateFields } from "../tls/cert_fields.ts";
import { CertificateError, splitCertificateChain } from "../tls/pem.ts";

/**
 * The RFC 9773 §4.1 certID of the first certificate of `certPem` (the leaf of a fullchain.pem):
 * base64url(AKI keyIdentifier) "." base64url(serial number's DER content bytes), "=" padding stripped from
 * both. Throws CertificateError naming `source` when the PEM holds no readable certificate, or when the leaf
 * has no authorityKeyIdentifier keyIdentifier (RFC 9773 §2 assumes every ACME-issued leaf has one; without
 * it the CA cannot be asked, and nexo renews on its fixed schedule).
 */
export function ariCertId(certPem: string, source?: string): string {
  const fields = readLeaf(certPem, source);
  if (fields.authorityKeyId === null || fields.authorityKeyId.length === 0) {
    throw new CertificateError(
      `Cannot compute the renewal information ID of ${
        describe(source)
      }: it has no authority key identifier ` +
        `(RFC 9773 needs one; nexo renews it on its fixed schedule)`,
    );
  }
  return formatCertId(fields.authorityKeyId, fields.serial);
}

/**
 * RFC 9773 §4.1: both parts base64url-encoded (RFC 4648 §5) with every trailing "=" stripped, joined by ".".
 * `serial` is the INTEGER's content as encoded, so a serial whose high bit is set keeps its leading 0x00.
 */
export function formatCertId(authorityKeyId: Uint8Array, serial: Uint8Array): string {
  const encode = (bytes: Uint8Array) => bytes.toBase64({ alphabet: "base64url", omitPadding: true });
  return `${encode(authorityKeyId)}.${encode(serial)}`;
}

function readLeaf(certPem: string, source: string | undefined): ParsedCertificate {
  const [leaf] = splitCertificateChain(certPem, source);
  try {
    return readCertificateFields(leaf?.der ?? new Uint8Array());
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    throw new CertificateError(
      `Cannot compute the renewal information ID of ${describe(source)}: ${err.message} (replace the file)`,
      { cause: err },
    );
  }
}

function describe(source: string | undefined): string {
  return source === undefined ? "the certificate" : `certificate "${source}"`;
}
