// A private PKI made with openssl for tests of TLS to upstreams: a CA, server certificates it signed for
// app.internal and localhost, a client certificate it signed (for mTLS), and a second, untrusted CA with a client
// certificate of its own. Every key is ECDSA P-256; everything lives one day.

export interface TestPki {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  /** A server certificate for localhost (the name a URL can reach), signed by the CA. */
  localhostCert: string;
  localhostKey: string;
  /** Subject CN "nexo-client", extendedKeyUsage clientAuth. */
  clientCert: string;
  clientKey: string;
  /** A CA the upstreams do not trust. */
  rogueCaCert: string;
  /** Subject CN "rogue-client", signed by the rogue CA. */
  rogueClientCert: string;
  rogueClientKey: string;
}

/** Makes the PKI in `dir` (which must exist) and returns the paths of its files. */
export async function makeTestPki(dir: string): Promise<TestPki> {
  const run = async (...args: string[]) => {
    const out = await new Deno.Command("openssl", { args, cwd: dir, stdout: "null", stderr: "piped" })
      .output();
    if (!out.success) {
      throw new Error(`openssl ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
    }
  };
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  const ca = async (name: string) =>
    await run(
      "req",
      "-x509",
      ...ec,
      "-days",
      "1",
      "-subj",
      `/CN=${name}`,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.pem`,
    );
  const leaf = async (name: string, caName: string, extensions: string) => {
    await run("req", ...ec, "-subj", `/CN=${name}`, "-keyout", `${name}.key`, "-out", `${name}.csr`);
    await Deno.writeTextFile(`${dir}/${name}.ext`, `basicConstraints=CA:FALSE\n${extensions}\n`);
    await run(
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      `${caName}.pem`,
      "-CAkey",
      `${caName}.key`,
      "-CAcreateserial",
      "-days",
      "1",
      "-extfile",
      `${name}.ext`,
      "-out",
      `${name}.pem`,
    );
  };
  await ca("test-ca");
  await ca("rogue-ca");
  await leaf("app-server", "test-ca", "subjectAltName=DNS:app.internal\nextendedKeyUsage=serverAuth");
  await leaf("localhost", "test-ca", "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth");
  await leaf("nexo-client", "test-ca", "extendedKeyUsage=clientAuth");
  await leaf("rogue-client", "rogue-ca", "extendedKeyUsage=clientAuth");
  const path = (name: string) => `${dir}/${name}`;
  return {
    dir,
    caCert: path("test-ca.pem"),
    serverCert: path("app-server.pem"),
    serverKey: path("app-server.key"),
    localhostCert: path("localhost.pem"),
    localhostKey: path("localhost.key"),
    clientCert: path("nexo-client.pem"),
    clientKey: path("nexo-client.key"),
    rogueCaCert: path("rogue-ca.pem"),
    rogueClientCert: path("rogue-client.pem"),
    rogueClientKey: path("rogue-client.key"),
  };
}
