import assert from "node:assert/strict";
import { randomToken, TokenSigner } from "./signed_token.ts";

const secret = (fill: number) => new Uint8Array(32).fill(fill);

Deno.test("TokenSigner returns the payload of its own tokens and null for anything else", async () => {
  const signer = await TokenSigner.create(secret(1));
  const token = await signer.sign({ k: "session", u: "octocat", i: 1700000000000 });
  assert.match(token, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/, "cookie- and URL-safe, no padding");
  assert.deepEqual(await signer.verify(token), { k: "session", u: "octocat", i: 1700000000000 });

  const [body, mac] = token.split(".") as [string, string];
  const otherBody = btoa(JSON.stringify({ k: "session", u: "hubot", i: 1700000000000 })).replace(/=+$/, "");
  assert.equal(await signer.verify(`${otherBody}.${mac}`), null, "a changed payload");
  assert.equal(await signer.verify(`${body}.${mac.slice(0, -2)}AA`), null, "a changed MAC");
  assert.equal(await signer.verify(body), null, "no MAC");
  assert.equal(await signer.verify(`${body}.!!!`), null, "a MAC that is not base64url");
  assert.equal(await signer.verify(""), null);
  assert.equal(await signer.verify(`${"A".repeat(3000)}.${mac}`), null, "far longer than any token");
  assert.equal(await (await TokenSigner.create(secret(2))).verify(token), null, "another key");

  // A validly signed payload that is not an object is still refused.
  for (const payload of ["[1]", "null", '"x"']) {
    const raw = new TextEncoder().encode(payload).toBase64({ alphabet: "base64url", omitPadding: true });
    const key = await crypto.subtle.importKey("raw", secret(1), { name: "HMAC", hash: "SHA-256" }, false, [
      "sign",
    ]);
    const sig = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(raw)));
    assert.equal(
      await signer.verify(`${raw}.${sig.toBase64({ alphabet: "base64url", omitPadding: true })}`),
      null,
    );
  }
});

Deno.test("randomToken gives distinct base64url nonces of the asked size", () => {
  const tokens = new Set(Array.from({ length: 100 }, () => randomToken()));
  assert.equal(tokens.size, 100);
  for (const token of tokens) assert.match(token, /^[A-Za-z0-9_-]{22}$/);
});
