// A TLS audit of the real CLI's listener, from the outside, as a scanner on the internet would see it:
// sslscan enumerates protocols, cipher suites, heartbleed and renegotiation for an ECDSA certificate (the
// local CA's) and an RSA one (a certbot-style pair in cert_dir), and a hand-written ClientHello checks that
// TLS compression (CRIME) is never chosen. The full testssl.sh run takes minutes: scripts/tls_audit.sh.

import assert from "node:assert/strict";
import { join } from "node:path";
import { type NexoProcess, startNexo } from "./harness.ts";

const SSLSCAN_INSTALLED = (() => {
  try {
    return new Deno.Command("sslscan", { args: ["--version"], stdout: "null", stderr: "null" }).outputSync()
      .success;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
})();
// In CI the audit must run (scripts/test.sh installs sslscan); on a developer's machine without it, say so.
const SKIP_SSLSCAN = !SSLSCAN_INSTALLED && !Deno.env.get("CI");
if (SKIP_SSLSCAN) {
  // deno-lint-ignore no-console
  console.warn("tls_audit_test: sslscan is not installed, skipping the scan (apt-get install sslscan)");
}

/** The config: an ECDSA host from the local CA and an RSA host from a certificate in cert_dir. */
const CONFIG = `
proxies:
  "app.test":
    redirect: example.org
  "rsa.test":
    redirect: example.org
`;

/** Starts nexo with an RSA-2048 certificate for rsa.test in cert_dir, as certbot would leave it. */
async function startWithRsaCertificate(): Promise<NexoProcess> {
  const dir = await Deno.makeTempDir({ prefix: "nexo-tls-audit-" });
  const certDir = join(dir, "certs", "rsa.test");
  await Deno.mkdir(certDir, { recursive: true });
  const openssl = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "2",
      "-subj",
      "/CN=rsa.test",
      "-addext",
      "subjectAltName=DNS:rsa.test",
      "-keyout",
      join(certDir, "privkey.pem"),
      "-out",
      join(certDir, "fullchain.pem"),
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.ok(openssl.success, new TextDecoder().decode(openssl.stderr));
  try {
    return await startNexo(CONFIG, { dir });
  } catch (error) {
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
}

/** Every `<tag .../>` element of sslscan's XML as its attributes. */
function elements(xml: string, tag: string): Array<Record<string, string>> {
  return [...xml.matchAll(new RegExp(`<${tag}\\s([^>]*?)/?>`, "g"))].map((match) =>
    Object.fromEntries([...(match[1] ?? "").matchAll(/([\w-]+)="([^"]*)"/g)].map((a) => [a[1], a[2]]))
  );
}

/**
 * How often a scan is repeated when sslscan gave up half-way. Its SSLv3 probe writes a hello in parts; nexo
 * (rustls) rejects SSLv3 at the first bytes and closes, so a later write can fail with EPIPE and sslscan
 * abandons the whole scan ("send() failed: Broken pipe"): in a third of full scans here, and 8 in a row once
 * in CI. So the full scan is limited to TLS (`--tlsall`, which never failed in 15 runs) and SSLv2 and SSLv3
 * are probed on their own (see sslProtocol).
 */
const SSLSCAN_ATTEMPTS = 8;

/** Runs sslscan with `args` against nexo, asking for `sni`; resolves with its exit code and XML. */
async function runSslscan(
  nexo: NexoProcess,
  sni: string,
  args: string[],
): Promise<{ code: number; xml: string }> {
  // SIGPIPE ignored: Deno's children get the default action, which kills sslscan (and its buffered XML)
  // when a probe writes to a connection nexo already closed; ignored, the write fails and sslscan says so.
  const output = await new Deno.Command("sh", {
    args: [
      "-c",
      `trap "" PIPE; exec sslscan "$@"`,
      "sslscan",
      "--xml=-",
      "--timeout=10",
      ...args,
      `--sni-name=${sni}`,
      `127.0.0.1:${nexo.port}`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const xml = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
  return { code: output.code, xml };
}

/** sslscan's complete XML report for TLS (every version: protocols, suites, heartbleed, renegotiation). */
async function sslscan(nexo: NexoProcess, sni: string): Promise<string> {
  let report = "";
  for (let attempt = 1; attempt <= SSLSCAN_ATTEMPTS; attempt++) {
    // Its TLS 1.2 key-exchange-group probe expects ServerKeyExchange in a record of its own; rustls packs
    // the whole server flight into one record (allowed, RFC 5246 §6.2.1), so each probe would sit out the
    // timeout (30 s a scan). The groups are not what this audit judges; the suites' key exchange is.
    const { code, xml } = await runSslscan(nexo, sni, ["--tlsall", "--no-groups"]);
    report = `sslscan exited ${code}:\n${xml}`;
    if (code === 0 && xml.includes("</document>") && !xml.includes("<error>")) return xml;
  }
  assert.fail(`no complete sslscan report for ${sni} in ${SSLSCAN_ATTEMPTS} attempts; the last:\n${report}`);
}

/**
 * sslscan's `<protocol type="ssl" version=.../>` element for SSLv2 or SSLv3. When sslscan's own hello broke
 * off because nexo closed the connection on its first bytes ("Broken pipe", see SSLSCAN_ATTEMPTS), the
 * protocol was refused: a server that spoke it would have answered with a ServerHello instead.
 */
async function sslProtocol(nexo: NexoProcess, sni: string, version: "2" | "3"): Promise<string> {
  let report = "";
  for (let attempt = 1; attempt <= SSLSCAN_ATTEMPTS; attempt++) {
    const { code, xml } = await runSslscan(nexo, sni, [`--ssl${version}`]);
    const element = new RegExp(`<protocol type="ssl" version="${version}" [^>]*/>`).exec(xml);
    if (element) return element[0];
    if (xml.includes("send() failed: Broken pipe")) {
      return `<protocol type="ssl" version="${version}" enabled="0" />`;
    }
    report = `sslscan exited ${code}:\n${xml}`;
  }
  assert.fail(
    `no SSLv${version} verdict from sslscan for ${sni} in ${SSLSCAN_ATTEMPTS} attempts; the last:\n${report}`,
  );
}

/** OpenSSL names of suites without forward secrecy or with broken parts, as sslscan prints them. */
const WEAK_CIPHER = /NULL|EXP|RC4|DES|anon|ADH|AECDH|MD5|PSK|SRP|IDEA|SEED/i;

function assertHardened(xml: string, sni: string): void {
  const protocols = Object.fromEntries(
    elements(xml, "protocol").map((p) => [`${p.type}${p.version}`, p.enabled]),
  );
  for (const old of ["ssl2", "ssl3", "tls1.0", "tls1.1"]) {
    assert.equal(protocols[old], "0", `${sni}: ${old} must be disabled (${JSON.stringify(protocols)})`);
  }
  assert.equal(protocols["tls1.2"], "1", `${sni}: TLS 1.2 is enabled for older clients`);
  assert.equal(protocols["tls1.3"], "1", `${sni}: TLS 1.3 is enabled`);

  const ciphers = elements(xml, "cipher").filter((c) => c.status === "accepted" || c.status === "preferred");
  assert.ok(ciphers.length >= 2, `${sni}: sslscan saw too few suites to judge: ${JSON.stringify(ciphers)}`);
  for (const c of ciphers) {
    const name = `${sni}: ${c.sslversion} ${c.cipher}`;
    assert.doesNotMatch(c.cipher ?? "", WEAK_CIPHER, `${name} is weak`);
    assert.ok(c.strength === "strong" || c.strength === "acceptable", `${name} rated ${c.strength}`);
    assert.ok(Number(c.bits) >= 128, `${name} has ${c.bits} bits`);
    // TLS 1.3 suites always use (EC)DHE; a TLS 1.2 suite has forward secrecy only with an ephemeral exchange.
    if (c.sslversion !== "TLSv1.3") {
      assert.match(c.cipher ?? "", /^(ECDHE|DHE)-/, `${name} lacks forward secrecy`);
    }
  }

  const heartbleed = elements(xml, "heartbleed");
  assert.ok(heartbleed.length > 0, `${sni}: sslscan ran no heartbleed check`);
  for (const h of heartbleed) assert.equal(h.vulnerable, "0", `${sni}: ${h.sslversion} heartbleed`);
  for (const r of elements(xml, "renegotiation")) {
    assert.ok(r.supported === "0" || r.secure === "1", `${sni}: insecure renegotiation is supported`);
  }
  for (const c of elements(xml, "compression")) {
    assert.equal(c.supported, "0", `${sni}: TLS compression is supported (CRIME)`);
  }
  assert.match(xml, new RegExp(`<subject><!\\[CDATA\\[${sni.replace(".", "\\.")}\\]\\]>`), `${sni}: cert`);
}

Deno.test({
  name: "the HTTPS listener offers only TLS 1.2/1.3 with forward-secret AEAD suites, per sslscan",
  ignore: SKIP_SSLSCAN,
  async fn() {
    const nexo = await startWithRsaCertificate();
    try {
      for (const sni of ["app.test", "rsa.test"]) {
        const ssl = [await sslProtocol(nexo, sni, "2"), await sslProtocol(nexo, sni, "3")];
        assertHardened([await sslscan(nexo, sni), ...ssl].join("\n"), sni);
      }
    } finally {
      await nexo.stop();
      await Deno.remove(nexo.dir, { recursive: true });
    }
  },
});

Deno.test("the audit's judgement fails a listener with old protocols, weak suites or heartbleed", () => {
  // The listener above cannot be made weak from the config, so the judgement is checked on sslscan reports
  // of servers that are: each line below alone must fail the audit.
  const good = [
    `<protocol type="ssl" version="2" enabled="0" />`,
    `<protocol type="ssl" version="3" enabled="0" />`,
    `<protocol type="tls" version="1.0" enabled="0" />`,
    `<protocol type="tls" version="1.1" enabled="0" />`,
    `<protocol type="tls" version="1.2" enabled="1" />`,
    `<protocol type="tls" version="1.3" enabled="1" />`,
    `<renegotiation supported="0" secure="0" />`,
    `<heartbleed sslversion="TLSv1.2" vulnerable="0" />`,
    `<cipher status="preferred" sslversion="TLSv1.3" bits="128" cipher="TLS_AES_128_GCM_SHA256" strength="acceptable" />`,
    `<cipher status="accepted" sslversion="TLSv1.2" bits="256" cipher="ECDHE-RSA-AES256-GCM-SHA384" strength="strong" />`,
    `<subject><![CDATA[x.test]]></subject>`,
  ];
  assertHardened(good.join("\n"), "x.test");
  const weak = [
    `<protocol type="tls" version="1.0" enabled="1" />`,
    `<protocol type="ssl" version="3" enabled="1" />`,
    `<cipher status="accepted" sslversion="TLSv1.2" bits="256" cipher="AES256-GCM-SHA384" strength="strong" />`,
    `<cipher status="accepted" sslversion="TLSv1.2" bits="112" cipher="ECDHE-RSA-DES-CBC3-SHA" strength="medium" />`,
    `<cipher status="accepted" sslversion="TLSv1.2" bits="128" cipher="ECDHE-RSA-RC4-SHA" strength="medium" />`,
    `<cipher status="accepted" sslversion="TLSv1.2" bits="0" cipher="ECDHE-RSA-NULL-SHA" strength="null" />`,
    `<cipher status="accepted" sslversion="TLSv1.2" bits="128" cipher="AECDH-AES128-SHA" strength="anonymous" />`,
    `<heartbleed sslversion="TLSv1.2" vulnerable="1" />`,
    `<renegotiation supported="1" secure="0" />`,
    `<compression supported="1" />`,
  ];
  for (const line of weak) {
    assert.throws(() => assertHardened([...good, line].join("\n"), "x.test"), assert.AssertionError, line);
  }
});

Deno.test("the HTTPS listener never chooses TLS compression, even when a client offers only DEFLATE", async () => {
  const nexo = await startNexo(CONFIG);
  try {
    // RFC 5246 §7.4.1.2: the server picks one of the offered methods. Offered DEFLATE (1) and null (0), it
    // must pick null; offered DEFLATE alone, it must refuse rather than compress (CRIME, CVE-2012-4929).
    const both = await sendClientHello(nexo.port, "app.test", [1, 0]);
    assert.deepEqual(both, { kind: "server_hello", compression: 0 });
    const deflateOnly = await sendClientHello(nexo.port, "app.test", [1]);
    assert.equal(
      deflateOnly.kind,
      "refused",
      `a DEFLATE-only hello was accepted: ${JSON.stringify(deflateOnly)}`,
    );
  } finally {
    await nexo.stop();
  }
});

type HelloAnswer = { kind: "server_hello"; compression: number } | { kind: "refused"; detail: string };

/**
 * Sends a TLS 1.2 ClientHello offering `compressionMethods` and reads the first handshake record back: the
 * ServerHello's compression method, or "refused" for an alert or a closed connection.
 */
async function sendClientHello(
  port: number,
  sni: string,
  compressionMethods: number[],
): Promise<HelloAnswer> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(clientHello(sni, compressionMethods));
    const head = await readExactly(conn, 5);
    if (head === null) return { kind: "refused", detail: "connection closed" };
    const body = await readExactly(conn, (head[3]! << 8) | head[4]!);
    if (body === null) return { kind: "refused", detail: "connection closed mid-record" };
    if (head[0] === 21) return { kind: "refused", detail: `alert ${body[0]}/${body[1]}` };
    assert.equal(head[0], 22, `expected a handshake record, got type ${head[0]}`);
    assert.equal(body[0], 2, `expected a ServerHello, got handshake type ${body[0]}`);
    // type(1) length(3) version(2) random(32) session_id(1 + n) cipher_suite(2) compression_method(1)
    const sessionIdLength = body[38]!;
    return { kind: "server_hello", compression: body[39 + sessionIdLength + 2]! };
  } catch (error) {
    if (error instanceof Deno.errors.ConnectionReset) return { kind: "refused", detail: "reset" };
    throw error;
  } finally {
    conn.close();
  }
}

async function readExactly(conn: Deno.Conn, length: number): Promise<Uint8Array | null> {
  const out = new Uint8Array(length);
  let filled = 0;
  while (filled < length) {
    const n = await conn.read(out.subarray(filled));
    if (n === null) return null;
    filled += n;
  }
  return out;
}

/** A TLS 1.2 ClientHello (RFC 5246 §7.4.1.2) with SNI, groups, point formats and signature algorithms. */
function clientHello(sni: string, compressionMethods: number[]): Uint8Array {
  const name = new TextEncoder().encode(sni);
  const u16 = (n: number) => [(n >> 8) & 0xff, n & 0xff];
  const vector16 = (bytes: number[]) => [...u16(bytes.length), ...bytes];
  const extension = (type: number, data: number[]) => [...u16(type), ...vector16(data)];
  const extensions = [
    ...extension(0x0000, vector16([0, ...vector16([...name])])), // server_name (RFC 6066 §3)
    ...extension(0x000a, vector16([0x00, 0x1d, 0x00, 0x17, 0x00, 0x18])), // x25519, P-256, P-384
    ...extension(0x000b, [1, 0]), // ec_point_formats: uncompressed
    // ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256, rsa_pkcs1_sha256, and their SHA-384 kin
    ...extension(0x000d, vector16([0x04, 0x03, 0x08, 0x04, 0x04, 0x01, 0x05, 0x03, 0x08, 0x05, 0x05, 0x01])),
    ...extension(0x0017, []), // extended_master_secret (RFC 7627)
    ...extension(0xff01, [0]), // renegotiation_info, empty (RFC 5746)
  ];
  // ECDHE-ECDSA and ECDHE-RSA with AES-GCM and ChaCha20-Poly1305.
  const suites = [0xc0, 0x2b, 0xc0, 0x2c, 0xc0, 0x2f, 0xc0, 0x30, 0xcc, 0xa9, 0xcc, 0xa8];
  const random = [...crypto.getRandomValues(new Uint8Array(32))];
  const hello = [
    0x03,
    0x03,
    ...random,
    0, // no session id
    ...vector16(suites),
    compressionMethods.length,
    ...compressionMethods,
    ...vector16(extensions),
  ];
  const handshake = [1, 0, ...u16(hello.length), ...hello];
  return new Uint8Array([22, 0x03, 0x01, ...u16(handshake.length), ...handshake]);
}
