import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { encodeImplicit, encodeOctetString, encodeSequence, readChildren, readElement } from "./der.ts";
import { encodeExtension, encodeName, OID, signCertificate } from "./x509.ts";
import { readCertificateFields } from "./cert_fields.ts";
import { LocalCa } from "./local_ca.ts";
import {
  CertificateError,
  checkKeyMatchesCertificate,
  computeFingerprint,
  encodePem,
  parseCertificate,
  splitCertificateChain,
} from "./pem.ts";
import { damaged, type MadeCertificate, makeCertificate, withTempDir } from "./test_helpers.ts";

/** What nexo read from a certificate before it read X.509 itself: node:crypto's view, as pem.ts used it. */
function nodeView(pem: string): Record<string, unknown> {
  const cert = new X509Certificate(pem);
  const san = cert.subjectAltName;
  // An empty subject reads as undefined (a leaf from Pebble or a short-lived Let's Encrypt one).
  const cn = (cert.subject ?? "").split("\n").find((line) => line.startsWith("CN="));
  return {
    names: san !== undefined && san !== ""
      ? san.split(", ").filter((item) => item.startsWith("DNS:")).map((item) => item.slice(4).toLowerCase())
      : cn === undefined
      ? []
      : [cn.slice(3).toLowerCase()],
    notBefore: cert.validFromDate.toISOString(),
    notAfter: cert.validToDate.toISOString(),
    issuer: cert.issuer.split("\n").join(", "),
    fingerprint: cert.fingerprint256,
  };
}

async function ownView(pem: string): Promise<Record<string, unknown>> {
  const info = parseCertificate(pem);
  return {
    names: info.names,
    notBefore: info.notBefore.toISOString(),
    notAfter: info.notAfter.toISOString(),
    issuer: info.issuer,
    fingerprint: await computeFingerprint(pem),
  };
}

function derOf(pem: string): Uint8Array<ArrayBuffer> {
  return splitCertificateChain(pem)[0]?.der ?? new Uint8Array();
}

/** openssl-made certificates covering the key types, name forms and time encodings nexo meets. */
async function makeVariety(dir: string): Promise<Record<string, MadeCertificate>> {
  const root = await makeCertificate(dir, "root", { key: "p384", subject: "/CN=Pebble Root CA 0c5f2e" });
  const intermediate = await makeCertificate(dir, "intermediate", {
    key: "rsa2048",
    subject: "/C=US/O=Pebble Test/CN=Pebble Intermediate CA 5a2b1c",
    ca: root,
  });
  return {
    root,
    intermediate,
    pebbleLeaf: await makeCertificate(dir, "leaf", {
      key: "p256",
      subject: "/",
      san: "DNS:Pebble.test,DNS:*.pebble.test",
      ca: intermediate,
    }),
    rsa: await makeCertificate(dir, "rsa", { key: "rsa2048", subject: "/CN=rsa.test", san: "DNS:rsa.test" }),
    p384: await makeCertificate(dir, "p384", { key: "p384", subject: "/CN=p384.test", san: "DNS:P384.test" }),
    ed25519: await makeCertificate(dir, "ed", { key: "ed25519", subject: "/CN=ed.test", san: "DNS:ed.test" }),
    cnOnly: await makeCertificate(dir, "cn", { key: "p256", subject: "/O=Acme, Inc/CN=Legacy.Test" }),
    noNames: await makeCertificate(dir, "none", { key: "p256", subject: "/O=Acme" }),
    mixedSans: await makeCertificate(dir, "mixed", {
      key: "p256",
      subject: "/CN=ignored.test",
      san: "DNS:A.test,IP:127.0.0.1,IP:::1,DNS:b.test,email:x@y.test,URI:https://u.test/,DNS:c.test",
    }),
    ipOnly: await makeCertificate(dir, "ip", { key: "p256", subject: "/CN=ip.test", san: "IP:10.0.0.1" }),
    year2054: await makeCertificate(dir, "long", { key: "p256", subject: "/CN=long.test", days: 10_000 }),
    manyAttributes: await makeCertificate(dir, "attrs", {
      key: "p256",
      subject: "/C=DE/ST=Berlin/L=Berlin/O=Acme, Inc/OU=Ops\\+Dev/CN=Wéird.Test/emailAddress=a@b.test" +
        "/serialNumber=123/DC=example/UID=u1/street=Main St/title=Boss/GN=Gi/SN=Sur/initials=X/pseudonym=P" +
        "/generationQualifier=Jr/dnQualifier=q/postalCode=10115/businessCategory=Private Organization" +
        "/jurisdictionC=DE/jurisdictionST=BE/jurisdictionL=Berlin/organizationIdentifier=VATDE-1/name=Nm" +
        "/description=Desc",
    }),
    multiValued: await makeCertificate(dir, "multi", {
      key: "p256",
      subject: "/O=A+OU=B/CN=Multi.test+serialNumber=7",
      multiValueRdn: true,
    }),
  };
}

Deno.test("parseCertificate() and computeFingerprint() read what node:crypto's X509Certificate read", async () => {
  await withTempDir(async (dir) => {
    const ca = await LocalCa.loadOrCreate(dir);
    const leaf = await ca.issue(["Www.Example.com", "*.example.com"]);
    const pems: Record<string, string> = { localRoot: ca.rootCertPem, localLeaf: leaf.certPem };
    for (const [name, made] of Object.entries(await makeVariety(dir))) pems[name] = made.certPem;
    for (const [name, pem] of Object.entries(pems)) {
      const expected = nodeView(pem);
      // pem.ts found the CN in node's subject text only when it led its RDN; nexo now finds it anywhere.
      if (name === "multiValued") expected.names = ["multi.test"];
      assert.deepEqual(await ownView(pem), expected, name);
    }
    // The cases above hit what they are named for.
    assert.deepEqual(parseCertificate(pems.mixedSans ?? "").names, ["a.test", "b.test", "c.test"]);
    assert.deepEqual(parseCertificate(pems.ipOnly ?? "").names, []);
    assert.deepEqual(parseCertificate(pems.cnOnly ?? "").names, ["legacy.test"]);
    assert.equal(parseCertificate(pems.year2054 ?? "").notAfter.getUTCFullYear() >= 2050, true);
    assert.equal(
      parseCertificate(pems.pebbleLeaf ?? "").issuer,
      "C=US, O=Pebble Test, CN=Pebble Intermediate CA 5a2b1c",
    );
    assert.match(
      parseCertificate(pems.multiValued ?? "").issuer,
      /^O=A \+ OU=B, serialNumber=7 \+ CN=Multi\.test$/, // DER sorts a SET OF by encoding (X.690 §11.6)
    );
    assert.match(
      parseCertificate(pems.manyAttributes ?? "").issuer,
      /CN=Wéird\.Test, emailAddress=a@b\.test/,
    );
  });
});

Deno.test("readCertificateFields() uses the CN only when there is no SAN extension at all (RFC 6125 §6.4.4)", async () => {
  const keys = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign"]);
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey));
  const sign = (extensions: Uint8Array<ArrayBuffer>[]) =>
    signCertificate({
      issuer: encodeName("Issuer"),
      subject: encodeName("Cn.Test"),
      notBefore: new Date("2049-12-31T23:59:59Z"), // UTCTime
      notAfter: new Date("2050-01-01T00:00:00Z"), // GeneralizedTime
      spki,
      extensions,
    }, keys.privateKey);
  const withoutSan = readCertificateFields(await sign([]));
  assert.deepEqual(withoutSan.names, ["cn.test"]);
  assert.equal(withoutSan.notBefore.toISOString(), "2049-12-31T23:59:59.000Z");
  assert.equal(withoutSan.notAfter.toISOString(), "2050-01-01T00:00:00.000Z");
  assert.equal(withoutSan.issuer, "CN=Issuer");
  const emptySan = await sign([encodeExtension(OID.subjectAltName, false, encodeSequence())]);
  assert.deepEqual(readCertificateFields(emptySan).names, []);
  const otherSans = encodeSequence(encodeImplicit(7, Uint8Array.of(10, 0, 0, 1))); // iPAddress [7]
  assert.deepEqual(
    readCertificateFields(await sign([encodeExtension(OID.subjectAltName, false, otherSans)])).names,
    [],
  );
});

Deno.test("parseCertificate() refuses trailing bytes and a certificate with a fourth part", async () => {
  await withTempDir(async (dir) => {
    const ca = await LocalCa.loadOrCreate(dir);
    const der = derOf(ca.rootCertPem);
    const trailing = encodePem("CERTIFICATE", Uint8Array.from([...der, 0]));
    assert.throws(
      () => parseCertificate(trailing, "t.pem"),
      /"t\.pem": the first CERTIFICATE block is not valid/,
    );
    const parts = readChildren(readElement(der).content);
    const fourParts = encodeSequence(
      ...parts.map((part) => part.encoded),
      encodeOctetString(Uint8Array.of(1)),
    );
    assert.throws(() => parseCertificate(encodePem("CERTIFICATE", fourParts)), CertificateError);
  });
});

Deno.test("parseCertificate(), computeFingerprint() and checkKeyMatchesCertificate() turn damaged certificates into CertificateError", async () => {
  await withTempDir(async (dir) => {
    const ca = await LocalCa.loadOrCreate(dir);
    const leaf = await ca.issue(["fuzz.test"]);
    const rsa = await makeCertificate(dir, "rsa", {
      key: "rsa2048",
      subject: "/CN=rsa.test",
      san: "DNS:rsa.test",
    });
    let refused = 0;
    for (const { certPem, keyPem } of [leaf, rsa]) {
      for (const der of damaged(derOf(certPem))) {
        const pem = encodePem("CERTIFICATE", der);
        try {
          parseCertificate(pem, "fuzz.pem");
          await computeFingerprint(pem, "fuzz.pem");
          await checkKeyMatchesCertificate(pem, keyPem, { certSource: "fuzz.pem" });
        } catch (err) {
          assert.ok(err instanceof CertificateError, `expected a CertificateError, got ${err}`);
          assert.match(err.message, /"fuzz\.pem"/);
          refused++;
        }
      }
    }
    assert.ok(refused > 1000, `only ${refused} damaged certificates were refused`);
  });
});
