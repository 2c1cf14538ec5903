// The RFC 2136 DnsProvider: DNS-01 records written with dynamic updates signed by a TSIG key, to any primary
// server that takes them (BIND, Knot, PowerDNS, Windows DNS, many registrars'). Updates go over TCP (no
// truncation, RFC 7766); zones are found by asking that server for SOA records up the name. The message bytes
// are dns_update.ts's; it does not wait for propagation (propagation.ts does).

import { errorMessage } from "../error_message.ts";
import { encodeUpdate, RCODES, readAnswer, signMessage, type TsigKey, type TxtChange } from "./dns_update.ts";
import {
  assertChallengeName,
  type DnsProvider,
  DnsProviderError,
  normalizeDnsName,
  type TxtRecordHandle,
} from "./provider.ts";
import { formatAddr } from "../ip_address.ts";
import { startTimer, stopTimer } from "../timers.ts";

/** TTL of challenge records, in seconds (as for Cloudflare: a cached old value is gone within 2 minutes). */
const RECORD_TTL_S = 120;
/** One update or query may take this long before the server counts as unreachable. */
const REQUEST_TIMEOUT_MS = 10_000;

export interface Rfc2136Options {
  /** The primary server: its address and port (53). */
  server: { hostname: string; port: number };
  key: TsigKey;
  /** The zone to update, when names should not be looked up (`rfc2136.zone`); null: found by SOA. */
  zone: string | null;
  /** Seams for tests. */
  now?: () => number;
  resolveDns?: typeof Deno.resolveDns;
}

/** The RFC 2136 provider; see `DnsProvider` for the contract it keeps. Calls may overlap. */
export class Rfc2136DnsProvider implements DnsProvider {
  readonly name = "rfc2136";
  readonly #options: Rfc2136Options;
  readonly #now: () => number;
  readonly #resolve: typeof Deno.resolveDns;
  readonly #zones = new Map<string, Promise<string>>();

  constructor(options: Rfc2136Options) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#resolve = options.resolveDns ?? Deno.resolveDns;
  }

  get #serverLabel(): string {
    return formatAddr(this.#options.server);
  }

  /**
   * Finds each name's zone and sends an empty signed update to it (RFC 2136 §3: no prerequisites, no
   * changes): the server checks the key and its right to update the zone, and changes nothing.
   */
  async verify(fqdns: readonly string[] = []): Promise<void> {
    const zones = new Set<string>();
    for (const fqdn of fqdns) zones.add(await this.findZone(fqdn));
    if (fqdns.length === 0 && this.#options.zone !== null) zones.add(normalizeDnsName(this.#options.zone));
    for (const zone of zones) await this.#update(zone, [], `check the TSIG key on zone ${zone}`);
  }

  findZone(fqdn: string): Promise<string> {
    const name = normalizeDnsName(fqdn);
    if (this.#options.zone !== null) {
      const zone = normalizeDnsName(this.#options.zone);
      if (name === zone || name.endsWith(`.${zone}`)) return Promise.resolve(zone);
      return Promise.reject(
        new DnsProviderError(
          "zone_not_found",
          `"${name}" is outside the zone ${zone} (dns.rfc2136.zone): remove zone: to look zones up, or fix it`,
        ),
      );
    }
    let found = this.#zones.get(name);
    if (found === undefined) {
      found = this.#lookUpZone(name);
      this.#zones.set(name, found);
      found.catch(() => this.#zones.delete(name));
    }
    return found;
  }

  /** The longest suffix of `name` the server holds an SOA record for: the zone apex (RFC 1035 §6.1). */
  async #lookUpZone(name: string): Promise<string> {
    const labels = name.split(".");
    const tried: string[] = [];
    for (let i = 0; i < labels.length - 1; i++) {
      if (labels[i]!.startsWith("_")) continue;
      const candidate = labels.slice(i).join(".");
      tried.push(candidate);
      try {
        const soa = await this.#resolve(candidate, "SOA", {
          nameServer: { ipAddr: this.#options.server.hostname, port: this.#options.server.port },
          signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        });
        if (soa.length > 0) return candidate;
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) continue;
        throw new DnsProviderError(
          "unavailable",
          `Cannot ask ${this.#serverLabel} for the zone of "${name}": ${errorMessage(error)}`,
          { cause: error },
        );
      }
    }
    throw new DnsProviderError(
      "zone_not_found",
      `${this.#serverLabel} holds no zone for "${name}" (asked for the SOA of ${tried.join(", ")}): check ` +
        `dns.rfc2136.server, or set dns.rfc2136.zone`,
    );
  }

  async createTxtRecord(fqdn: string, value: string): Promise<TxtRecordHandle> {
    const name = normalizeDnsName(fqdn);
    if (name === "" || value === "") {
      throw new TypeError(
        `createTxtRecord() needs a name and a value, got ${JSON.stringify({ fqdn, value })}`,
      );
    }
    const zone = await this.findZone(name);
    // RFC 2136 §3.4.2.2: adding a record that exists already changes nothing, so a retry is harmless.
    await this.#update(zone, [{ op: "add", name, value, ttl: RECORD_TTL_S }], `add TXT "${name}" to ${zone}`);
    return { provider: this.name, fqdn: name, value, zone, ref: {} };
  }

  async deleteTxtRecord(handle: TxtRecordHandle): Promise<void> {
    if (handle.provider !== this.name) {
      throw new TypeError(
        `deleteTxtRecord() got a handle of provider "${handle.provider}", not "${this.name}"`,
      );
    }
    // §3.4.2.4: deleting a record that is not there is a no-op, so this is idempotent.
    await this.#update(
      handle.zone,
      [{ op: "delete", name: handle.fqdn, value: handle.value }],
      `delete TXT "${handle.fqdn}" from ${handle.zone}`,
    );
  }

  async cleanupStale(fqdn: string): Promise<number> {
    const name = assertChallengeName(fqdn);
    const zone = await this.findZone(name);
    let count: number;
    try {
      count = (await this.#resolve(name, "TXT", {
        nameServer: { ipAddr: this.#options.server.hostname, port: this.#options.server.port },
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      })).length;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) {
        throw new DnsProviderError("unavailable", `Cannot list TXT "${name}" at ${this.#serverLabel}`, {
          cause: error,
        });
      }
      count = 0; // none, or a refused or failed query: Deno 2.9.6 does not tell them apart
    }
    // Sent whatever the count: a server that refuses nexo's queries (an allow-query list) reads as empty, and
    // deleting an RRset that is not there changes nothing (RFC 2136 §3.4.2.3). The count is best effort.
    await this.#update(zone, [{ op: "delete-all", name }], `delete every TXT at "${name}"`);
    return count;
  }

  /** Sends one signed update and turns every answer but a verified NOERROR into a DnsProviderError. */
  async #update(zone: string, changes: TxtChange[], what: string): Promise<void> {
    const { key } = this.#options;
    const id = crypto.getRandomValues(new Uint16Array(1))[0]!;
    const request = await signMessage(encodeUpdate(id, zone, changes), key, Math.floor(this.#now() / 1000));
    let bytes: Uint8Array;
    try {
      bytes = await this.#exchange(request.bytes);
    } catch (error) {
      throw new DnsProviderError(
        "unavailable",
        `Cannot ${what}: ${this.#serverLabel} did not answer (${
          errorMessage(error)
        }); check dns.rfc2136.server`,
        { cause: error },
      );
    }
    let answer;
    try {
      answer = await readAnswer(bytes, request, key);
    } catch (error) {
      throw new DnsProviderError(
        "unavailable",
        `Cannot ${what}: ${this.#serverLabel} sent ${errorMessage(error)}`,
      );
    }
    const said = [RCODES[answer.rcode] ?? `RCODE ${answer.rcode}`];
    if (answer.tsig !== null && answer.tsig.error !== 0) {
      said.push(RCODES[answer.tsig.error] ?? `${answer.tsig.error}`);
    }
    const answered = `${this.#serverLabel} answered ${said.join(", ")}`;
    const keyName = `the TSIG key "${key.name}" (${key.algorithm})`;
    if (answer.id !== id) {
      throw new DnsProviderError("unavailable", `Cannot ${what}: the answer is for another query`);
    }
    if (answer.rcode === 9 /* NOTAUTH */ && answer.tsig?.verified === true && answer.tsig.error === 0) {
      // Signed, with no TSIG error: the key is fine, the server is not authoritative for the zone.
      throw new DnsProviderError(
        "zone_not_found",
        `Cannot ${what}: ${answered}; it is not authoritative for ${zone}: check dns.rfc2136.zone and server`,
      );
    }
    if (answer.rcode === 9 /* NOTAUTH */ || (answer.tsig !== null && answer.tsig.error !== 0)) {
      const why = answer.tsig?.error === 18 /* BADTIME */
        ? "this machine's clock and the server's differ by more than 5 minutes: synchronize them (NTP)"
        : `the server does not accept ${keyName}: check dns.rfc2136.tsig_key, tsig_secret_file and ` +
          `tsig_algorithm against its key clause`;
      throw new DnsProviderError("credentials", `Cannot ${what}: ${answered}; ${why}`);
    }
    if (answer.rcode === 5 /* REFUSED */) {
      throw new DnsProviderError(
        "credentials",
        `Cannot ${what}: ${answered}; the server does not let ${keyName} update ${zone}: add ` +
          `\`allow-update { key "${key.name}"; };\` (or an update-policy grant) to the zone`,
      );
    }
    if (answer.rcode === 10 /* NOTZONE */) {
      throw new DnsProviderError(
        "zone_not_found",
        `Cannot ${what}: ${answered}; ${zone} is not a zone it serves`,
      );
    }
    if (answer.rcode !== 0) {
      const kind = answer.rcode === 2 /* SERVFAIL */ ? "unavailable" : "rejected";
      throw new DnsProviderError(kind, `Cannot ${what}: ${answered}`);
    }
    // RFC 8945 §5.4.3: a signed answer must be signed within its fudge of this machine's clock.
    if (answer.tsig !== null && answer.tsig.verified) {
      const skewS = Math.abs(this.#now() / 1000 - answer.tsig.timeSigned);
      if (skewS > answer.tsig.fudge) {
        throw new DnsProviderError(
          "rejected",
          `Cannot ${what}: ${this.#serverLabel} signed its answer ${Math.round(skewS)} s away from this ` +
            `machine's clock (more than its ${answer.tsig.fudge} s fudge): synchronize the clocks (NTP)`,
        );
      }
    }
    // RFC 8945 §5.3: the answer to a signed request is signed; an unsigned or forged one proves nothing.
    if (answer.tsig === null || !answer.tsig.verified) {
      throw new DnsProviderError(
        "rejected",
        `Cannot ${what}: ${this.#serverLabel}'s answer is ${
          answer.tsig === null ? "not signed" : "signed wrongly"
        }, ` +
          `so it cannot be trusted; check that nothing between nexo and the server rewrites DNS`,
      );
    }
  }

  /** One message over TCP (RFC 1035 §4.2.2: a two-byte length before each message). */
  async #exchange(message: Uint8Array): Promise<Uint8Array> {
    const { hostname, port } = this.#options.server;
    const conn = await Deno.connect({ hostname, port, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    const timer = startTimer(() => conn.close(), REQUEST_TIMEOUT_MS);
    try {
      const framed = new Uint8Array(2 + message.length);
      framed[0] = message.length >>> 8;
      framed[1] = message.length & 0xff;
      framed.set(message, 2);
      for (let written = 0; written < framed.length;) written += await conn.write(framed.subarray(written));
      const head = await readExactly(conn, 2);
      return await readExactly(conn, (head[0]! << 8) | head[1]!);
    } finally {
      stopTimer(timer);
      try {
        conn.close();
      } catch {
        // closed by the timer
      }
    }
  }
}

async function readExactly(conn: Deno.Conn, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  for (let at = 0; at < length;) {
    const read = await conn.read(out.subarray(at));
    if (read === null) throw new Error(`the connection closed after ${at} of ${length} bytes`);
    at += read;
  }
  return out;
}
