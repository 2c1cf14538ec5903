import assert from "node:assert/strict";
import { type AcmeClient, AcmeError } from "./acme_client.ts";
import { createOrder, isReplacesRefused } from "./issue.ts";
import type { ChallengeSolver } from "./solvers.ts";

const problem = (type: string, status: number, detail: string) =>
  new AcmeError("Cannot create an order", { type, status, detail, retryAfterMs: null });

Deno.test("isReplacesRefused(): any problem but a rate limit is worth one order without replaces", () => {
  assert.equal(isReplacesRefused(problem("urn:ietf:params:acme:error:alreadyReplaced", 409, "")), true);
  assert.equal(
    isReplacesRefused(problem("urn:ietf:params:acme:error:malformed", 400, 'unknown field "replaces"')),
    true,
  );
  // Boulder's refusals of a certificate another account holds, or one it no longer knows.
  assert.equal(
    isReplacesRefused(problem(
      "urn:ietf:params:acme:error:unauthorized",
      403,
      "requester account did not request the certificate being replaced by this order",
    )),
    true,
  );
  assert.equal(
    isReplacesRefused(problem("urn:ietf:params:acme:error:malformed", 404, "no current certificate")),
    true,
  );
  assert.equal(isReplacesRefused(problem("urn:ietf:params:acme:error:rateLimited", 429, "replaces")), false);
  assert.equal(isReplacesRefused(new AcmeError("refused", null)), false);
  assert.equal(isReplacesRefused(new Error("replaces")), false);
});

Deno.test("createOrder() sends replaces only when there is a predecessor", async () => {
  const payloads: unknown[] = [];
  const client = {
    createOrder: (payload: unknown) => {
      payloads.push(payload);
      return Promise.resolve({ status: "pending" });
    },
  } as unknown as AcmeClient;
  const options = {
    client,
    directoryUrl: "https://acme.test/dir",
    solver: {} as ChallengeSolver,
    keyType: "ecdsa" as const,
  };
  await createOrder(["a.example.com"], options);
  await createOrder(["a.example.com"], { ...options, replaces: "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE" });
  assert.deepEqual(payloads, [
    { identifiers: [{ type: "dns", value: "a.example.com" }] },
    {
      identifiers: [{ type: "dns", value: "a.example.com" }],
      replaces: "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE",
    },
  ]);
});
