// HTTP-01 responses kept in the shared store too, so that behind a load balancer whichever instance the CA
// reaches answers the challenge another instance's order published (RFC 8555 §8.3). Own responses are
// answered from memory; the rest are asked of Redis, only for well-formed tokens (http_redirect.ts checks).

import { type Http01Tokens, LocalHttp01Tokens } from "../http01_tokens.ts";
import type { RespClient } from "../storage/resp_client.ts";

/**
 * A response outlives its order by at most an hour: an order that crashed never withdraws it, and Let's
 * Encrypt's authorizations wait for validation far less than that.
 */
const TOKEN_TTL_S = 3600;

/** HTTP-01 responses in this process and under `<prefix>:http01:<token>` in Redis. */
export class SharedHttp01Tokens implements Http01Tokens {
  readonly #local = new LocalHttp01Tokens();
  readonly #client: RespClient;
  readonly #prefix: string;

  constructor(client: RespClient, prefix: string) {
    this.#client = client;
    this.#prefix = prefix;
  }

  /** Rejects when Redis cannot take it (then only this instance answers the challenge). */
  async publish(token: string, keyAuthorization: string): Promise<void> {
    await this.#local.publish(token, keyAuthorization);
    await this.#client.command(["SET", this.#key(token), keyAuthorization, "EX", String(TOKEN_TTL_S)]);
  }

  async withdraw(token: string): Promise<void> {
    await this.#local.withdraw(token);
    await this.#client.command(["DEL", this.#key(token)]);
  }

  /** From memory, else from Redis; undefined when neither has it or Redis does not answer. */
  async lookup(token: string): Promise<string | undefined> {
    const own = await this.#local.lookup(token);
    if (own !== undefined) return own;
    const reply = await this.#client.command(["GET", this.#key(token)]).catch(() => null);
    return reply instanceof Uint8Array ? new TextDecoder().decode(reply) : undefined;
  }

  #key(token: string): string {
    return `${this.#prefix}:http01:${token}`;
  }
}
