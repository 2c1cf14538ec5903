// The HTTP-01 responses nexo serves at /.well-known/acme-challenge/<token> while an order waits for the CA
// (RFC 8555 §8.3): published by the ACME supervisor for its worker, looked up by the plain-HTTP listener.
// This process's own; a shared store adds the other instances' (lib/cluster/shared_tokens.ts).

/** Where HTTP-01 responses are kept. Calls may overlap; a lookup never throws. */
export interface Http01Tokens {
  /** Serves `keyAuthorization` for `token` from now on (once it resolves). */
  publish(token: string, keyAuthorization: string): Promise<void>;
  /** Stops serving `token`. */
  withdraw(token: string): Promise<void>;
  /** The key authorization for `token`, or undefined when none is published. */
  lookup(token: string): Promise<string | undefined>;
}

/** The responses of this process, in memory. */
export class LocalHttp01Tokens implements Http01Tokens {
  readonly #tokens = new Map<string, string>();

  publish(token: string, keyAuthorization: string): Promise<void> {
    this.#tokens.set(token, keyAuthorization);
    return Promise.resolve();
  }

  withdraw(token: string): Promise<void> {
    this.#tokens.delete(token);
    return Promise.resolve();
  }

  lookup(token: string): Promise<string | undefined> {
    return Promise.resolve(this.#tokens.get(token));
  }
}
