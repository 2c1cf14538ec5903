// The acme-dns DnsProvider (github.com/joohoi/acme-dns): the user points `_acme-challenge.<domain>` by CNAME at
// an account's "<subdomain>.<acme-dns domain>" (the fulldomain), and nexo stores challenge values there with
// the account's /update. acme-dns cannot delete, list or read, and keeps two values per account; the HTTP is
// acme_dns_api.ts's. It does not check propagation (propagation.ts does, at `recordName()`).

import { errorMessage } from "../error_message.ts";
import { sleep as timerSleep } from "../sleep.ts";
import { AcmeDnsApi, type UpdateAnswer } from "./acme_dns_api.ts";
import {
  ACME_CHALLENGE_LABEL,
  assertChallengeName,
  challengeRecordName,
  type DnsProvider,
  type DnsProviderCapabilities,
  DnsProviderError,
  normalizeDnsName,
  type TxtRecordHandle,
} from "./provider.ts";

export interface AcmeDnsProviderOptions {
  /** Base URL of the acme-dns API ("https://auth.example.org"). */
  api: string;
  /** The account's username (a UUID), as /register returned it. */
  username: string;
  /** The account's password (a secret: sent only in the X-Api-Key header, never in a message). */
  password: string;
  /** The account's subdomain (a UUID label), as /register returned it. */
  subdomain: string;
  /**
   * "<subdomain>.auth.example.org", where the CNAME points and the values are served; null when not known.
   * Used by `recordName()`, the CNAME check and messages.
   */
  fulldomain: string | null;
  /**
   * The domain whose `_acme-challenge` name is delegated to this account ("example.org"): the provider serves
   * exactly that name. Null or absent: it serves every `_acme-challenge` name, each of which the user points
   * at the same fulldomain; they then share the account's two values, so at most two challenges across all of
   * them may be pending at once.
   */
  domain?: string | null;
  /** Seam for tests: the fetch to use. */
  fetch?: typeof fetch;
  /** PEM certificates to trust for the API's TLS certificate, beside the system's (a private CA). */
  caCertsPem?: string[];
  /**
   * Resolves the CNAME of each name in `verify(fqdns)`; absent: that check is skipped. Pass
   * Deno.resolveDns (the system's resolver) or one bound to `acme.dns_resolvers`.
   */
  resolveDns?: typeof Deno.resolveDns;
  /** Seams for tests: the clock (ms since the epoch) and waiting (the spacing between updates). */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * acme-dns overwrites the slot with the oldest LastUpdate, a Unix time in whole seconds (pkg/database/db.go,
 * `ORDER BY LastUpdate LIMIT 1`), and SQL leaves ties unordered: two updates within one second may overwrite
 * in either order. Starting each update a second after the last one was answered makes "oldest" exact, so
 * nexo knows which two values are served. It costs at most a second per order (an apex and its wildcard).
 */
const UPDATE_SPACING_MS = 1_000;
/** One CNAME query may take 5 s (UDP loss, a slow resolver) before verify() reports the resolver down. */
const CNAME_TIMEOUT_MS = 5_000;
/** acme-dns keeps two values per account (`Txtlimit`), for a name and its wildcard (README, "Features"). */
const SLOTS = 2;

/** The acme-dns provider; see `DnsProvider` for the contract and `capabilities` for what it cannot keep. */
export class AcmeDnsProvider implements DnsProvider {
  readonly name = "acme-dns";
  /** acme-dns has no delete, no list and two slots per account (README "Features"; no route but /update). */
  readonly capabilities: DnsProviderCapabilities = { deletes: false, maxValuesPerName: SLOTS };
  readonly #api: AcmeDnsApi;
  /** The configured domain and `_acme-challenge.<domain>`, or null for every `_acme-challenge` name. */
  readonly #domain: string | null;
  readonly #served: string | null;
  readonly #fulldomain: string | null;
  readonly #resolveDns: typeof Deno.resolveDns | null;
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<void>;
  /** The values acme-dns serves, oldest first, as far as nexo knows: [] when it does not know. */
  #slots: string[] = [];
  /** When the last update that was (or may have been) stored was answered, by `#now`. */
  #lastWriteAt = -Infinity;
  /** Updates run one at a time, in call order: which slot an update overwrites depends on the one before. */
  #queue: Promise<unknown> = Promise.resolve();

  /** Throws a TypeError when `api` is not an http(s) URL or `fulldomain` is not below `subdomain`. */
  constructor(options: AcmeDnsProviderOptions) {
    if (!URL.canParse(options.api) || !/^https?:$/.test(new URL(options.api).protocol)) {
      throw new TypeError(`The acme-dns api must be an http(s) URL, got ${JSON.stringify(options.api)}`);
    }
    const fulldomain = options.fulldomain === null ? null : normalizeDnsName(options.fulldomain);
    const subdomain = normalizeDnsName(options.subdomain);
    if (fulldomain !== null && !fulldomain.startsWith(`${subdomain}.`)) {
      throw new TypeError(
        `The acme-dns fulldomain "${fulldomain}" does not start with the subdomain "${subdomain}": both come ` +
          `from one /register answer ("fulldomain" is "<subdomain>.<acme-dns domain>")`,
      );
    }
    this.#api = new AcmeDnsApi({
      api: options.api,
      username: options.username,
      password: options.password,
      subdomain: options.subdomain,
      ...(options.fetch ? { fetch: options.fetch } : {}),
      ...(options.now ? { now: options.now } : {}),
      ...(options.caCertsPem ? { caCertsPem: options.caCertsPem } : {}),
    });
    this.#served = options.domain ? challengeRecordName(options.domain) : null;
    this.#domain = this.#served === null ? null : withoutLabel(this.#served);
    this.#fulldomain = fulldomain;
    this.#resolveDns = options.resolveDns ?? null;
    this.#now = options.now ?? Date.now;
    this.#sleep = options.sleep ?? ((ms) => timerSleep(ms));
  }

  /**
   * Sends an update with an empty value: acme-dns authenticates the user, key, allowfrom and subdomain before
   * it looks at the value (pkg/api/auth.go wraps the handler), then refuses the value with 400 and stores
   * nothing. So a 400 proves the account works from this machine and a 401 says it does not; there is no
   * other credentials check in its API. With `fqdns`, each must be a name this account serves, and with
   * `resolveDns`, each one's `_acme-challenge` name must be a CNAME to the fulldomain.
   */
  async verify(fqdns: readonly string[] = []): Promise<void> {
    for (const fqdn of fqdns) await this.findZone(fqdn);
    await this.#serialized(() => this.#send("", "check the acme-dns account"));
    if (this.#resolveDns === null) return;
    const names = new Set(fqdns.map((fqdn) => challengeRecordName(withoutLabel(normalizeDnsName(fqdn)))));
    for (const name of names) await this.#checkCname(name, this.#resolveDns);
  }

  /**
   * With a domain: the domain, for `_acme-challenge.<domain>` and the domain itself, zone_not_found otherwise.
   * Without: the name below `_acme-challenge.` (acme-dns holds no zone of the user's; the challenge is for
   * that name).
   */
  findZone(fqdn: string): Promise<string> {
    const name = normalizeDnsName(fqdn);
    if (this.#domain === null) return Promise.resolve(withoutLabel(name));
    if (name === this.#served || name === this.#domain) return Promise.resolve(this.#domain);
    return Promise.reject(this.#notServed(name));
  }

  /** The fulldomain for a served name (where its CNAME points), when known; `fqdn` otherwise. */
  recordName(fqdn: string): string {
    const name = normalizeDnsName(fqdn);
    return this.#serves(name) && this.#fulldomain !== null ? this.#fulldomain : name;
  }

  /**
   * Stores `value` in acme-dns's older slot, so the two newest values are served. A value in the newer slot
   * is not sent again: that would overwrite the other slot, which may hold a value an order still needs (a
   * wildcard's beside its apex's). A value in the older slot is sent again, which overwrites itself and makes
   * it the newer one. What the slots hold is known from this object's own updates only: after a restart, or
   * an update whose outcome is unknown, the value is sent. Fails with zone_not_found, without a request, for
   * a name it does not serve.
   */
  async createTxtRecord(fqdn: string, value: string): Promise<TxtRecordHandle> {
    const name = normalizeDnsName(fqdn);
    if (name === "" || value === "") {
      throw new TypeError(
        `createTxtRecord() needs a name and a value, got ${JSON.stringify({ fqdn, value })}`,
      );
    }
    if (!this.#serves(name)) throw this.#notServed(name);
    await this.#serialized(async () => {
      if (this.#slots.at(-1) === value) return;
      const what = `publish a TXT value for "${name}" at ${this.#target}`;
      const answer = await this.#send(value, what);
      if (answer.status === 400) throw this.#refused(answer, value, what);
    });
    return {
      provider: this.name,
      fqdn: name,
      value,
      zone: this.#domain ?? withoutLabel(name),
      ref: { subdomain: this.#api.subdomain },
    };
  }

  /** Checks the handle, then resolves: acme-dns cannot delete (`capabilities.deletes` is false). */
  deleteTxtRecord(handle: TxtRecordHandle): Promise<void> {
    if (handle.provider !== this.name) {
      return Promise.reject(
        new TypeError(`deleteTxtRecord() got a handle of provider "${handle.provider}", not "${this.name}"`),
      );
    }
    return Promise.resolve();
  }

  /** Checks the name and its zone, then resolves 0: acme-dns can neither list nor delete. */
  async cleanupStale(fqdn: string): Promise<number> {
    await this.findZone(assertChallengeName(fqdn));
    return 0;
  }

  #serves(name: string): boolean {
    return this.#served === null ? name.startsWith(`${ACME_CHALLENGE_LABEL}.`) : name === this.#served;
  }

  #notServed(name: string): DnsProviderError {
    if (this.#served === null) {
      return new DnsProviderError(
        "zone_not_found",
        `${this.#api.label} publishes only "${ACME_CHALLENGE_LABEL}." names, not "${name}"`,
      );
    }
    return new DnsProviderError(
      "zone_not_found",
      `${this.#api.label} serves only "${this.#served}" (a CNAME to ${this.#target}), not "${name}": this ` +
        `provider is configured for the domain ${this.#domain}, so "${name}" needs an acme-dns account (or ` +
        `a CNAME to this one) configured for its own domain`,
    );
  }

  /** The fulldomain, or the subdomain when the fulldomain is not known. */
  get #target(): string {
    return this.#fulldomain ?? `the acme-dns subdomain "${this.#api.subdomain}"`;
  }

  /** Runs `task` after every task queued before it, whether they failed or not. */
  #serialized<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(task, task);
    this.#queue = run.catch(() => {});
    return run;
  }

  /**
   * One update, spaced from the last stored one (UPDATE_SPACING_MS), keeping `#slots` true: a 200 puts the
   * value in the older slot; a failure that may have stored it ("unavailable": no answer, 5xx) makes the
   * slots unknown, so later values are all sent.
   */
  async #send(txt: string, what: string): Promise<UpdateAnswer> {
    const wait = this.#lastWriteAt + UPDATE_SPACING_MS - this.#now();
    if (wait > 0) await this.#sleep(wait);
    let answer: UpdateAnswer;
    try {
      answer = await this.#api.update(txt, what);
    } catch (error) {
      if (error instanceof DnsProviderError && error.kind === "unavailable") {
        this.#slots = [];
        this.#lastWriteAt = this.#now();
      }
      throw error;
    }
    if (answer.status === 200) {
      this.#slots = [...this.#slots.filter((slot) => slot !== txt), txt].slice(-SLOTS);
      this.#lastWriteAt = this.#now();
    }
    return answer;
  }

  /** The "rejected" error for a 400, saying what acme-dns checks (pkg/api/util.go validTXT, validSubdomain). */
  #refused(answer: UpdateAnswer, value: string, what: string): DnsProviderError {
    const said = `${this.#api.label} answered HTTP 400 {"error": "${answer.error}"}`;
    let fix = "";
    if (answer.error === "bad_txt") {
      fix = `: acme-dns takes exactly 43 characters of A-Z, a-z, 0-9, "-" and "_" (a DNS-01 digest), got ` +
        `${value.length} characters`;
    } else if (answer.error === "bad_subdomain") {
      fix = `: set subdomain to the UUID label /register returned, without the acme-dns domain`;
    }
    return new DnsProviderError("rejected", `Cannot ${what}: ${said}${fix}`, { status: 400 });
  }

  /** verify()'s delegation check: `name` (an `_acme-challenge` name) must be a CNAME to the fulldomain. */
  async #checkCname(name: string, resolveDns: typeof Deno.resolveDns): Promise<void> {
    let targets: string[];
    try {
      targets = (await resolveDns(name, "CNAME", { signal: AbortSignal.timeout(CNAME_TIMEOUT_MS) }))
        .map(normalizeDnsName);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) {
        throw new DnsProviderError(
          "unavailable",
          `Cannot check the CNAME of "${name}": the DNS lookup failed (${errorMessage(error)})`,
          { cause: error },
        );
      }
      targets = [];
    }
    const subdomain = normalizeDnsName(this.#api.subdomain);
    const expected = this.#fulldomain ?? `${subdomain}.<acme-dns domain>`;
    const delegated = targets.some((target) =>
      this.#fulldomain === null ? target.startsWith(`${subdomain}.`) : target === this.#fulldomain
    );
    if (delegated) return;
    const found = targets.length === 0
      ? "has no CNAME record"
      : `is a CNAME to "${targets.join('", "')}", not to ${expected}`;
    throw new DnsProviderError(
      "zone_not_found",
      `"${name}" ${found}: acme-dns answers its challenges only through that CNAME; set ` +
        `"${name}. CNAME ${expected}." in the zone of ${withoutLabel(name)} at its DNS host`,
    );
  }
}

/** "_acme-challenge.example.org" -> "example.org"; any other name is returned as it is. */
function withoutLabel(name: string): string {
  return name.startsWith(`${ACME_CHALLENGE_LABEL}.`) ? name.slice(ACME_CHALLENGE_LABEL.length + 1) : name;
}
