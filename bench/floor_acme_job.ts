// One job of the ACME rows' floor (bench/floor_acme.ts), run in a fresh Web Worker: what an ACME order asks
// of Deno, without nexo's code. TLS requests to the CA through a client trusting its root (the directory, a
// nonce, a POST the CA answers), two P-256 key generations (account and certificate key), a public key
// exported as a JWK, six ECDSA signatures (an order's JWS requests) and a PKCS#8 export. Posts the key's
// PKCS#8 bytes for the main thread to store, as nexo's worker hands its certificate and key to nexo.

const scope = self as unknown as {
  onmessage: (event: MessageEvent<{ directoryUrl: string; caPem: string }>) => void;
  postMessage(message: ArrayBuffer): void;
};

scope.onmessage = async (event) => {
  const { directoryUrl, caPem } = event.data;
  const client = Deno.createHttpClient({ caCerts: [caPem] });
  try {
    const directory = await (await fetch(directoryUrl, { client })).json();
    const nonce = (await fetch(directory.newNonce, { method: "HEAD", client })).headers.get("replay-nonce");
    const algorithm = { name: "ECDSA", namedCurve: "P-256" };
    const accountKey = await crypto.subtle.generateKey(algorithm, true, ["sign", "verify"]);
    const certificateKey = await crypto.subtle.generateKey(algorithm, true, ["sign", "verify"]);
    const jwk = await crypto.subtle.exportKey("jwk", accountKey.publicKey);
    const payload = new TextEncoder().encode(JSON.stringify({ jwk, nonce, url: directory.newAccount }));
    for (let i = 0; i < 6; i++) {
      await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, accountKey.privateKey, payload);
    }
    const pkcs8 = await crypto.subtle.exportKey("pkcs8", certificateKey.privateKey);
    // Not a valid JWS: the CA reads it and answers with a problem document, a real TLS POST either way.
    const answer = await fetch(directory.newAccount, {
      method: "POST",
      body: payload,
      headers: { "content-type": "application/jose+json" },
      client,
    });
    await answer.text();
    scope.postMessage(pkcs8);
  } finally {
    client.close();
  }
};
