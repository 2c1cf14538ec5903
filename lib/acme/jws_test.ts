import assert from "node:assert/strict";
import { createPrivateKey } from "./csr.ts";
import { importAccountKey, signExternalAccountBinding, signJws, thumbprint } from "./jws.ts";

const decode = (text: string) => Uint8Array.fromBase64(text, { alphabet: "base64url" });
const json = (text: string) => JSON.parse(new TextDecoder().decode(decode(text)));

for (const type of ["ecdsa", "rsa"] as const) {
  Deno.test(`signJws(): a ${type} account key's JWS verifies with the public key in its own header`, async () => {
    const key = await importAccountKey(await createPrivateKey(type));
    assert.equal(key.alg, type === "ecdsa" ? "ES256" : "RS256");
    assert.deepEqual(Object.keys(key.jwk), type === "ecdsa" ? ["crv", "kty", "x", "y"] : ["e", "kty", "n"]);
    const jws = await signJws(key, { nonce: "n1", url: "https://ca.example/new-acct" }, { a: 1 });
    const header = json(jws.protected);
    assert.deepEqual(header, { alg: key.alg, jwk: key.jwk, nonce: "n1", url: "https://ca.example/new-acct" });
    assert.deepEqual(json(jws.payload), { a: 1 });
    const params = type === "ecdsa"
      ? { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" }
      : { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
    const publicKey = await crypto.subtle.importKey("jwk", header.jwk, params, false, ["verify"]);
    const signed = new TextEncoder().encode(`${jws.protected}.${jws.payload}`);
    assert.ok(await crypto.subtle.verify(params, publicKey, decode(jws.signature), signed));
  });
}

Deno.test("signJws(): with an account URL the header carries kid, not jwk; POST-as-GET has an empty payload", async () => {
  const key = await importAccountKey(await createPrivateKey("ecdsa"));
  const jws = await signJws(key, {
    nonce: "n2",
    url: "https://ca.example/order/1",
    kid: "https://ca.example/acct/7",
  }, undefined);
  assert.deepEqual(json(jws.protected), {
    alg: "ES256",
    kid: "https://ca.example/acct/7",
    nonce: "n2",
    url: "https://ca.example/order/1",
  });
  assert.equal(jws.payload, "");
});

Deno.test("thumbprint(): base64url SHA-256 of the required members in lexicographic order (RFC 7638)", async () => {
  const key = await importAccountKey(await createPrivateKey("ecdsa"));
  const { crv, kty, x, y } = key.jwk;
  const canonical = `{"crv":"${crv}","kty":"${kty}","x":"${x}","y":"${y}"}`;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(canonical)));
  assert.equal(await thumbprint(key), digest.toBase64({ alphabet: "base64url", omitPadding: true }));
  assert.match(await thumbprint(key), /^[\w-]{43}$/);
});

Deno.test("signExternalAccountBinding(): HS256 over the account's JWK with the CA's kid and MAC key", async () => {
  const key = await importAccountKey(await createPrivateKey("ecdsa"));
  const macKey = crypto.getRandomValues(new Uint8Array(32));
  const hmacKey = macKey.toBase64({ alphabet: "base64url", omitPadding: true });
  const eab = await signExternalAccountBinding(key, { kid: "kid-1", hmacKey }, "https://ca.example/new-acct");
  assert.deepEqual(json(eab.protected), { alg: "HS256", kid: "kid-1", url: "https://ca.example/new-acct" });
  assert.deepEqual(json(eab.payload), key.jwk);
  const mac = await crypto.subtle.importKey("raw", macKey, { name: "HMAC", hash: "SHA-256" }, false, [
    "verify",
  ]);
  const signed = new TextEncoder().encode(`${eab.protected}.${eab.payload}`);
  assert.ok(await crypto.subtle.verify("HMAC", mac, decode(eab.signature), signed));
  // The same key with padding or in the +/ alphabet, as some CAs show it, signs the same.
  const padded = macKey.toBase64();
  const again = await signExternalAccountBinding(
    key,
    { kid: "kid-1", hmacKey: padded },
    "https://ca.example/new-acct",
  );
  assert.equal(again.signature, eab.signature);
  await assert.rejects(
    signExternalAccountBinding(key, { kid: "k", hmacKey: "not base64!" }, "u"),
    /hmac_key/,
  );
});

Deno.test("importAccountKey(): a key that is not PKCS#8 is refused with what it must be", async () => {
  await assert.rejects(
    importAccountKey("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"),
    /PKCS#8/,
  );
});
