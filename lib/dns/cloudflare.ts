// The Cloudflare DnsProvider: creates, lists and deletes the TXT records of DNS-01 challenges through the v4
// API, and checks the token's permissions at startup. HTTP, the envelope, rate limits and secret redaction live
// in cloudflare_api.ts, finding a name's zone in cloudflare_zones.ts; it does not wait for propagation.

import {
  CloudflareApi,
  type CloudflareApiOptions,
  type CloudflareResponse,
  hasErrorCode,
  TOKEN_PAGE,
} from "./cloudflare_api.ts";
import { type CloudflareZone, CloudflareZones } from "./cloudflare_zones.ts";
import {
  assertChallengeName,
  type DnsProvider,
  DnsProviderError,
  normalizeDnsName,
  type TxtRecordHandle,
} from "./provider.ts";

export interface CloudflareProviderOptions extends CloudflareApiOptions {
  /** Use this zone for every name instead of looking zones up by name (`cloudflare.zone_id`); null: look up. */
  zoneId?: string | null;
}

/**
 * TTL of challenge records, in seconds: 120 is short enough that a resolver which cached a previous value
 * forgets it within two minutes, and above Cloudflare's 60 s minimum for non-Enterprise zones. Lists are read
 * 100 records a page (a name holds one or two challenge values, so one page is the norm).
 */
const RECORD_TTL_S = 120;
const PAGE_SIZE = 100;

/** Cloudflare error codes we act on (returned in the envelope's `errors[]`). */
const CODE_IDENTICAL_RECORD_EXISTS = 81058;
const CODE_RECORD_DOES_NOT_EXIST = 81044;

const TOKEN_HINT =
  `check cloudflare.api_token: it must be an API token (not the Global API Key) from ${TOKEN_PAGE} ` +
  `with the Zone:DNS:Edit and Zone:Zone:Read permissions`;

function dnsEditHint(zone: string): string {
  return `the API token lacks the Zone:DNS:Edit permission on ${zone}: add it at ${TOKEN_PAGE}`;
}

interface DnsRecord {
  id: string;
  type: string;
  name: string;
  content: string;
}

/**
 * The Cloudflare DNS provider (see `DnsProvider` for the contract it keeps). Needs an API token with
 * Zone:DNS:Edit and Zone:Zone:Read. Zone ids are cached per zone name for the life of the object, so a
 * renewal costs one POST and one DELETE per name. Construct it from `Config.cloudflare`
 * (`{ apiToken, apiBase, zoneId }`) plus, in tests, a `fetch`.
 */
export class CloudflareDnsProvider implements DnsProvider {
  readonly name = "cloudflare";
  #api: CloudflareApi;
  #zones: CloudflareZones;

  constructor(options: CloudflareProviderOptions) {
    this.#api = new CloudflareApi(options);
    this.#zones = new CloudflareZones(this.#api, {
      zoneId: options.zoneId ?? null,
      now: options.now ?? Date.now,
    });
  }

  /**
   * Checks that the token is valid and active (GET /user/tokens/verify), that it can read the zones of
   * `fqdns` (or, without names, at least one zone) and their DNS records. Cloudflare lets a token see its own
   * permissions only with an extra permission, so a token with Zone:DNS:Read but not Edit passes here and is
   * reported by the first `createTxtRecord()`, naming Zone:DNS:Edit.
   */
  async verify(fqdns: readonly string[] = []): Promise<void> {
    const token = await this.#api.expect<{ status?: string }>("verify the Cloudflare API token", {
      method: "GET",
      path: "/user/tokens/verify",
      deniedHint: TOKEN_HINT,
    });
    if (token.result.status !== "active") {
      throw new DnsProviderError(
        "credentials",
        `The Cloudflare API token is ${token.result.status ?? "not active"}: ${TOKEN_HINT}`,
        { status: token.status },
      );
    }
    const zones = new Map<string, CloudflareZone>();
    if (fqdns.length === 0) {
      const zone = await this.#zones.anyZone();
      zones.set(zone.id, zone);
    }
    for (const fqdn of fqdns) {
      const zone = await this.#zones.zoneFor(normalizeDnsName(fqdn));
      zones.set(zone.id, zone);
    }
    for (const zone of zones.values()) {
      const query = new URLSearchParams({ type: "TXT", per_page: "5" });
      await this.#api.expect(`read the DNS records of Cloudflare zone ${zone.name}`, {
        method: "GET",
        path: `/zones/${encodeURIComponent(zone.id)}/dns_records?${query}`,
        deniedHint: dnsEditHint(zone.name),
      });
    }
  }

  async findZone(fqdn: string): Promise<string> {
    return (await this.#zones.zoneFor(normalizeDnsName(fqdn))).name;
  }

  async createTxtRecord(fqdn: string, value: string): Promise<TxtRecordHandle> {
    const name = normalizeDnsName(fqdn);
    if (name === "" || value === "") {
      throw new TypeError(
        `createTxtRecord() needs a name and a value, got ${JSON.stringify({ fqdn, value })}`,
      );
    }
    const zone = await this.#zones.zoneFor(name);
    const what = `create TXT record "${name}" in Cloudflare zone ${zone.name}`;
    let response: CloudflareResponse<DnsRecord>;
    for (let attempt = 1;; attempt++) {
      try {
        response = await this.#api.request<DnsRecord>(
          what,
          "POST",
          `/zones/${encodeURIComponent(zone.id)}/dns_records`,
          { type: "TXT", name, content: value, ttl: RECORD_TTL_S },
        );
        break;
      } catch (error) {
        const delay = this.#api.retryDelay(error, attempt);
        if (delay === null) throw error;
        await this.#api.sleep(delay);
        // A create that failed in transit (a 5xx after the write, a timeout) may have made the record: look
        // first, so a retry never leaves two records with one value.
        const [existing] = await this.#listTxt(zone, name, value);
        if (existing !== undefined) return this.#handle(zone, existing, value);
      }
    }
    if (response.ok && response.result !== null) return this.#handle(zone, response.result, value);
    // The same value is already published (a retried order): adopt it, as the contract promises.
    if (hasErrorCode(response, CODE_IDENTICAL_RECORD_EXISTS)) {
      const [existing] = await this.#listTxt(zone, name, value);
      if (existing !== undefined) return this.#handle(zone, existing, value);
    }
    this.#zones.forget(zone);
    throw this.#api.failure(what, response, dnsEditHint(zone.name));
  }

  async deleteTxtRecord(handle: TxtRecordHandle): Promise<void> {
    const zoneId = handle.ref.zoneId;
    const recordId = handle.ref.recordId;
    if (handle.provider !== this.name) {
      throw new TypeError(
        `deleteTxtRecord() got a handle of provider "${handle.provider}" for "${handle.fqdn}"; ` +
          `this is the "${this.name}" provider: pass handles back to the provider that created them`,
      );
    }
    if (zoneId === undefined || recordId === undefined) {
      throw new TypeError(
        `deleteTxtRecord() got a Cloudflare handle for "${handle.fqdn}" without ref.zoneId and ref.recordId: ` +
          `pass the handle createTxtRecord() returned, unchanged`,
      );
    }
    const what = `delete TXT record "${handle.fqdn}" (id ${recordId}) in Cloudflare zone ${handle.zone}`;
    const response = await this.#api.request(
      what,
      "DELETE",
      `/zones/${encodeURIComponent(zoneId)}/dns_records/${encodeURIComponent(recordId)}`,
    );
    // Already gone counts as deleted: the contract makes deletion idempotent.
    if (response.ok || response.status === 404 || hasErrorCode(response, CODE_RECORD_DOES_NOT_EXIST)) return;
    throw this.#api.failure(what, response, dnsEditHint(handle.zone));
  }

  async cleanupStale(fqdn: string): Promise<number> {
    const name = assertChallengeName(fqdn);
    const zone = await this.#zones.zoneFor(name);
    const stale = await this.#listTxt(zone, name);
    // One at a time: a crash leaves a handful of records, and sequential deletes stay far below the rate limit.
    for (const record of stale) {
      await this.deleteTxtRecord(this.#handle(zone, record, unquoteTxt(record.content)));
    }
    return stale.length;
  }

  #handle(zone: CloudflareZone, record: DnsRecord, value: string): TxtRecordHandle {
    return {
      provider: this.name,
      fqdn: normalizeDnsName(record.name),
      value,
      zone: zone.name,
      ref: { zoneId: zone.id, recordId: record.id },
    };
  }

  /** TXT records at exactly `name` (and with `content`, when given), every page. */
  async #listTxt(zone: CloudflareZone, name: string, content?: string): Promise<DnsRecord[]> {
    const found: DnsRecord[] = [];
    for (let page = 1;; page++) {
      const query = new URLSearchParams({
        type: "TXT",
        name,
        per_page: String(PAGE_SIZE),
        page: String(page),
      });
      if (content !== undefined) query.set("content", content);
      const response = await this.#api.expect<DnsRecord[]>(
        `list TXT records "${name}" in Cloudflare zone ${zone.name}`,
        {
          method: "GET",
          path: `/zones/${encodeURIComponent(zone.id)}/dns_records?${query}`,
          deniedHint: dnsEditHint(zone.name),
        },
      );
      found.push(
        ...response.result.filter((record) =>
          record.type === "TXT" && normalizeDnsName(record.name) === name &&
          (content === undefined || unquoteTxt(record.content) === content)
        ),
      );
      if (response.result.length === 0 || page >= (response.resultInfo?.total_pages ?? 1)) return found;
    }
  }
}

/** Cloudflare may show TXT content in quotes (RFC 1035 §5.1 presentation form); compare the bare value. */
function unquoteTxt(content: string): string {
  return content.length >= 2 && content.startsWith('"') && content.endsWith('"')
    ? content.slice(1, -1)
    : content;
}
