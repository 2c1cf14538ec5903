// The HTTP side of an acme-dns server (github.com/joohoi/acme-dns): `POST <api>/update` with the account's
// X-Api-User and X-Api-Key, a request timeout, an optional CA for a self-hosted API's certificate, 429 bans,
// and every answer that is not a stored value turned into a DnsProviderError naming the API and the user,
// never the key. It knows nothing of names, the two TXT slots or CNAMEs (acme_dns.ts does).

import { errorMessage } from "../error_message.ts";
import { parseRetryAfter } from "./cloudflare_api.ts";
import { type DnsProviderError, secretSafeError } from "./provider.ts";
import { startTimer, stopTimer } from "../timers.ts";

export interface AcmeDnsApiOptions {
  /** Base URL of the API ("https://auth.example.org"); "/update" is appended. */
  api: string;
  /** The account's username: the UUID /register returned. */
  username: string;
  /** The account's password (a secret: sent only in X-Api-Key, cut out of every message). */
  password: string;
  /** The account's subdomain: the UUID label /register returned, without the acme-dns domain. */
  subdomain: string;
  /** Seams: the fetch to use and the clock (ms since the epoch). */
  fetch?: typeof fetch;
  now?: () => number;
  /** PEM certificates to trust for the API's TLS certificate, beside the system's (a private CA). */
  caCertsPem?: readonly string[];
  /** Longest one request may take, in ms; default 30 s. */
  requestTimeoutMs?: number;
}

/** An answer acme-dns gave to an update: 200 (stored) or 400 (refused the subdomain or value, nothing stored). */
export interface UpdateAnswer {
  status: 200 | 400;
  /** The `error` of a 400's `{"error": "..."}` body ("bad_txt", "bad_subdomain"), or the body; "" for 200. */
  error: string;
}

/**
 * Timing: acme-dns answers an update from its database in milliseconds, but bounds each database call at
 * 20 s (pkg/database/db.go), so 30 s lets its own failure arrive and still bounds a hung connection. A 429
 * can only come from a proxy in front of acme-dns (it has no rate limit of its own); without a Retry-After we
 * stay away for a minute.
 */
const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
const DEFAULT_RATE_LIMIT_BAN_MS = 60_000;
/** Longest piece of an unexpected body quoted in a message. */
const QUOTE_LIMIT = 200;
/** acme-dns's own format checks (pkg/api/util.go): a UUID username, a 40-character key in this alphabet. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const KEY_ALPHABET = /^[A-Za-z0-9_-]*$/;
const KEY_LENGTH = 40;

/**
 * A client for one acme-dns account. Calls may overlap (acme_dns.ts serializes the updates, which must be
 * ordered). It never retries: an update is not idempotent (each one overwrites acme-dns's older TXT slot).
 * After a 429 it refuses every request until the ban is over, throwing "rate_limited" without sending.
 */
export class AcmeDnsApi {
  readonly api: string;
  readonly username: string;
  readonly subdomain: string;
  readonly #password: string;
  readonly #fetch: typeof fetch;
  readonly #now: () => number;
  readonly #caCertsPem: readonly string[];
  readonly #timeoutMs: number;
  #bannedUntil = 0;

  constructor(options: AcmeDnsApiOptions) {
    this.api = options.api.trim().replace(/\/+$/, "");
    this.username = options.username;
    this.subdomain = options.subdomain;
    this.#password = options.password;
    this.#fetch = options.fetch ?? fetch;
    this.#now = options.now ?? Date.now;
    this.#caCertsPem = options.caCertsPem ?? [];
    this.#timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  }

  /** "acme-dns at https://auth.example.org (user 1f0e...)": how messages name the account. */
  get label(): string {
    return `acme-dns at ${this.api} (user "${this.username}")`;
  }

  /**
   * Sends `{"subdomain", "txt"}` to /update. Resolves with a 200 (acme-dns stored `txt` in the older of its
   * two slots) or a 400 (it refused the subdomain or value before storing anything). Throws a
   * DnsProviderError otherwise: "credentials" (401, 403), "rate_limited" (429, or a ban still running),
   * "unavailable" (5xx, network failure, timeout: the update may or may not have been stored), "rejected"
   * (anything else: a wrong URL, a redirect, a 200 that is not acme-dns's echo). `what` completes
   * "Cannot ..." in messages.
   */
  async update(txt: string, what: string): Promise<UpdateAnswer> {
    const bannedForMs = this.#bannedUntil - this.#now();
    if (bannedForMs > 0) {
      throw this.#error("rate_limited", `Cannot ${what}: ${banText(bannedForMs)}`, {
        retryAfterMs: bannedForMs,
      });
    }
    const { status, headers, text } = await this.#post(txt, what);
    const answered = `Cannot ${what}: ${this.label} answered HTTP ${status}`;
    const error = errorField(text);
    const quoted = text.trim() === "" ? "" : ` ${quote(text)}`;
    if (status === 200) {
      // acme-dns echoes the stored value: {"txt": "..."} (pkg/api/update.go).
      if (bodyTxt(text) === txt) return { status, error: "" };
      throw this.#error(
        "rejected",
        `${answered} without acme-dns's {"txt": ...} echo of the value${quoted}: check that ${this.api} is the ` +
          `base URL of an acme-dns API`,
        { status },
      );
    }
    if (status === 400) return { status, error: error ?? text.trim() };
    if (status === 401 || status === 403) {
      throw this.#error("credentials", `${answered}${quoted}: ${this.#deniedHint(error)}`, { status });
    }
    if (status === 429) {
      const retryAfterMs = parseRetryAfter(headers.get("retry-after"), this.#now()) ??
        DEFAULT_RATE_LIMIT_BAN_MS;
      this.#bannedUntil = Math.max(this.#bannedUntil, this.#now() + retryAfterMs);
      throw this.#error("rate_limited", `${answered} (${banText(retryAfterMs)})`, { status, retryAfterMs });
    }
    if (status >= 500) {
      throw this.#error(
        "unavailable",
        `${answered}${quoted} (a failure on its side or in between; try again later)`,
        { status, retryAfterMs: parseRetryAfter(headers.get("retry-after"), this.#now()) },
      );
    }
    const location = headers.get("location");
    const fix = status >= 300 && status < 400 && location !== null
      ? `it redirects to "${quote(location)}": set the api URL to where it points`
      : `check that ${this.api} is the base URL of an acme-dns API, without "/update"`;
    throw this.#error("rejected", `${answered}${quoted}: ${fix}`, { status });
  }

  async #post(txt: string, what: string): Promise<{ status: number; headers: Headers; text: string }> {
    const controller = new AbortController();
    const timer = startTimer(() => controller.abort(), this.#timeoutMs);
    // A client per request: updates are a few per certificate, and a kept client would be a resource nobody
    // closes (DnsProvider has no close()).
    const client = this.#caCertsPem.length > 0
      ? Deno.createHttpClient({ caCerts: [...this.#caCertsPem] })
      : undefined;
    try {
      const response = await this.#fetch(`${this.api}/update`, {
        method: "POST",
        headers: {
          "x-api-user": this.username,
          "x-api-key": this.#password,
          "content-type": "application/json",
          accept: "application/json",
        },
        body: JSON.stringify({ subdomain: this.subdomain, txt }),
        // A redirect would turn the POST into a GET (RFC 9110 §15.4); report it instead.
        redirect: "manual",
        signal: controller.signal,
        ...(client ? { client } : {}),
      });
      return { status: response.status, headers: response.headers, text: await response.text() };
    } catch (error) {
      const reason = controller.signal.aborted
        ? `no answer within ${this.#timeoutMs / 1000} s`
        : withCauses(error);
      const hint = /certificate/i.test(reason)
        ? ` (if a private CA signed its certificate, give nexo that CA's certificate)`
        : "";
      throw this.#error("unavailable", `Cannot ${what}: ${this.label} failed: ${reason}${hint}`, {
        cause: error,
      });
    } finally {
      stopTimer(timer);
      client?.close();
    }
  }

  /**
   * Why acme-dns refused the account. It answers one `{"error": "forbidden"}` (pkg/api/auth.go) for an
   * unknown user, a wrong or malformed key, a subdomain that is not the user's and an address outside the
   * account's allowfrom list, so the hint names all four, after what can be told here without the server.
   */
  #deniedHint(error: string | null): string {
    const local: string[] = [];
    if (!UUID.test(this.username)) local.push(`the username is not a UUID, as acme-dns usernames are`);
    if (this.#password.length !== KEY_LENGTH) {
      local.push(`the password has ${this.#password.length} characters, acme-dns's have ${KEY_LENGTH}`);
    } else if (!KEY_ALPHABET.test(this.#password)) {
      local.push(
        `the password has characters other than A-Z, a-z, 0-9, "-" and "_", which acme-dns's never do`,
      );
    }
    const found = local.length > 0 ? `${local.join("; ")}. ` : "";
    if (error !== "forbidden") {
      return `${found}acme-dns did not accept the username and password: check them against what /register ` +
        `returned`;
    }
    return `${found}acme-dns says "forbidden" for a wrong username or password, for a subdomain that is not ` +
      `the account's ("${this.subdomain}"), and for a request from an address outside the account's allowfrom ` +
      `list: check the username, password and subdomain against what /register returned; if the account was ` +
      `registered with allowfrom, this machine's address as acme-dns sees it must be inside one of those CIDR ` +
      `ranges (register a new account with this machine's range, or none)`;
  }

  /** Every error leaves through here, so the password is cut out of any text that could carry it. */
  #error(
    kind: DnsProviderError["kind"],
    message: string,
    options: { status?: number | null; retryAfterMs?: number | null; cause?: unknown } = {},
  ): DnsProviderError {
    return secretSafeError(this.#password, kind, message, options);
  }
}

/** An error's message followed by its causes' ("fetch failed: ...: invalid peer certificate: UnknownIssuer"). */
function withCauses(error: unknown): string {
  const parts: string[] = [];
  for (let at: unknown = error; at !== undefined && at !== null && parts.length < 5;) {
    const text = errorMessage(at);
    if (!parts.some((part) => part.includes(text))) parts.push(text);
    at = at instanceof Error ? at.cause : undefined;
  }
  return parts.join(": ");
}

/** The `error` of acme-dns's `{"error": "..."}` body (pkg/api/util.go jsonError), or null. */
function errorField(text: string): string | null {
  try {
    const parsed = JSON.parse(text);
    return typeof parsed?.error === "string" ? parsed.error : null;
  } catch {
    return null;
  }
}

/** The `txt` of a 200's `{"txt": "..."}` body, or null. */
function bodyTxt(text: string): string | null {
  try {
    const parsed = JSON.parse(text);
    return typeof parsed?.txt === "string" ? parsed.txt : null;
  } catch {
    return null;
  }
}

/** A body or header as it came, on one line and cut to QUOTE_LIMIT characters. */
function quote(text: string): string {
  const line = text.trim().replace(/\s+/g, " ");
  return line.length > QUOTE_LIMIT ? `${line.slice(0, QUOTE_LIMIT)}...` : line;
}

function banText(ms: number): string {
  return `rate limited; nexo sends acme-dns no requests for ${Math.ceil(ms / 1000)} s`;
}
