// The CAs one ACME job orders from: `acme.directory`, then `acme.issuers`' others, each with its stored
// account (created once, reused; registered again when the CA forgot it). A certificate the first CA fails
// to issue is ordered from the next. It orders; it does not store certificates or decide when to renew.

import { errorMessage } from "../error_message.ts";
import type { CertRepository } from "../storage/cert_repository.ts";
import { type AcmeClient, AcmeError, createAcmeClient, ensureAccount } from "./acme_client.ts";
import { createPrivateKey } from "./csr.ts";
import { issueCertificate, type IssuedChain } from "./issue.ts";
import type { ChallengeSolver } from "./solvers.ts";
import type { WorkerSettings } from "./messages.ts";

type Log = (level: "info" | "warn", event: string, fields: Record<string, string>) => void;

/** One CA as the worker orders from it: `acme.directory` and its settings, or one of `acme.issuers`. */
type Issuer = Pick<WorkerSettings, "directoryUrl" | "eab" | "caCertsPem">;

/**
 * The CAs of a job (`acme.directory`, then `acme.issuers`' others), each with its account client made on
 * first use. A certificate the first CA fails to issue (an ACME error, or the CA unreachable) is ordered from
 * the next, as Caddy falls back from Let's Encrypt to ZeroSSL; a failure on nexo's side (DNS, the disk, a
 * challenge that did not validate) is the same at every CA and is not retried elsewhere.
 */
export class Issuers {
  readonly #settings: WorkerSettings;
  readonly #repository: CertRepository;
  readonly #log: (level: "info" | "warn", event: string, fields: Record<string, string>) => void;
  readonly #clients = new Map<string, Promise<AcmeClient>>();
  /** Directories whose forgotten account was registered again in this job (once each). */
  readonly #reregistered = new Set<string>();

  constructor(
    settings: WorkerSettings,
    repository: CertRepository,
    log: (level: "info" | "warn", event: string, fields: Record<string, string>) => void,
  ) {
    this.#settings = settings;
    this.#repository = repository;
    this.#log = log;
  }

  /** Orders `names` from each CA in turn until one issues; throws the last CA's error. */
  async issue(
    names: string[],
    options: { solver: ChallengeSolver; replaces: string | null },
  ): Promise<{ chain: IssuedChain; directoryUrl: string }> {
    const { directoryUrl, eab, caCertsPem } = this.#settings;
    const issuers: Issuer[] = [{ directoryUrl, eab, caCertsPem }, ...this.#settings.fallbacks];
    for (const [i, issuer] of issuers.entries()) {
      try {
        // `replaces` names a certificate of the first CA (the supervisor sends it only then); others refuse it.
        const replaces = i === 0 ? options.replaces : null;
        const chain = await this.#issueAt(issuer, names, { solver: options.solver, replaces });
        return { chain, directoryUrl: issuer.directoryUrl };
      } catch (error) {
        const next = issuers[i + 1];
        if (next === undefined || !fallsBack(error)) throw error;
        this.#log("warn", "certificate issuer failed, trying the next", {
          names: names.join(","),
          directory: issuer.directoryUrl,
          next: next.directoryUrl,
          error: errorMessage(error),
        });
      }
    }
    throw new Error("unreachable: the last issuer's failure is thrown above");
  }

  async #issueAt(
    issuer: Issuer,
    names: string[],
    options: { solver: ChallengeSolver; replaces: string | null },
  ): Promise<IssuedChain> {
    const settings = { ...this.#settings, ...issuer };
    const order = async () =>
      issueCertificate(names, {
        client: await this.#client(settings),
        directoryUrl: issuer.directoryUrl,
        solver: options.solver,
        keyType: settings.keyType,
        replaces: options.replaces,
        onProgress: (event, fields) => this.#log("info", event, fields),
      });
    return await order().catch(async (error) => {
      // The CA forgot the account (a reset staging CA, a restarted Pebble): register again, once per job and
      // CA, and retry the order; a second refusal is a real failure.
      if (this.#reregistered.has(issuer.directoryUrl) || !isAccountGone(error)) throw error;
      this.#reregistered.add(issuer.directoryUrl);
      this.#clients.set(
        issuer.directoryUrl,
        accountClient(settings, this.#repository, this.#log, { forgotten: errorMessage(error) }),
      );
      return await order();
    });
  }

  /** The account client for the CA of `settings`, made (and the account registered) on first use. */
  #client(settings: WorkerSettings): Promise<AcmeClient> {
    let client = this.#clients.get(settings.directoryUrl);
    if (client === undefined) {
      client = accountClient(settings, this.#repository, this.#log);
      // A CA that could not be reached is asked again for the next certificate.
      client.catch(() => this.#clients.delete(settings.directoryUrl));
      this.#clients.set(settings.directoryUrl, client);
    }
    return client;
  }
}

/** RFC 8555 §7.3.1, §6.7: the account a request was signed for is unknown to the server. */
const ACCOUNT_DOES_NOT_EXIST = "urn:ietf:params:acme:error:accountDoesNotExist";

function isAccountGone(error: unknown): boolean {
  return error instanceof AcmeError && error.problem?.type === ACCOUNT_DOES_NOT_EXIST;
}

/**
 * A client for the stored account of the directory, registering one first when none is stored. With
 * `forgotten` (why the server refused the stored one), the stored URL is dropped and the same key is
 * registered again: the server made a new account for it, whose URL replaces the old one.
 */
async function accountClient(
  settings: WorkerSettings,
  repository: CertRepository,
  log: (level: "info" | "warn", event: string, fields: Record<string, string>) => void,
  options: { forgotten?: string } = {},
) {
  const stored = await repository.loadAccount(settings.directoryUrl);
  const keyPem = stored?.keyPem ?? await createPrivateKey("ecdsa");
  const storedUrl = options.forgotten === undefined ? stored?.url ?? null : null;
  const client = createAcmeClient({
    directoryUrl: settings.directoryUrl,
    accountKeyPem: keyPem,
    accountUrl: storedUrl,
    caCertsPem: settings.caCertsPem,
    eab: settings.eab,
  });
  if (!storedUrl) {
    // RFC 8555 §7.3: registering an existing key returns that account, so a key whose account URL was lost
    // (a crash between the two writes) finds its account again instead of burning a new registration.
    const url = await ensureAccount(client, settings.email, settings.directoryUrl, settings.eab !== null);
    await repository.saveAccount(settings.directoryUrl, { keyPem, url, email: settings.email });
    if (options.forgotten !== undefined) {
      log("warn", "acme account re-registered", {
        directory: settings.directoryUrl,
        previous: stored?.url ?? "",
        account: url,
        reason: options.forgotten,
      });
    } else {
      log("info", stored ? "acme account recovered" : "acme account created", {
        directory: settings.directoryUrl,
      });
    }
  }
  return client;
}

/**
 * Problems another CA would meet the same way: a challenge that did not validate (the DNS record, the
 * HTTP-01 answer, the network path to this machine), so trying the next CA would only double the failed
 * validations. CAA refusals and everything on the CA's side (its outage, account, policy, limits) fall back.
 */
const VALIDATION_PROBLEMS = new Set(
  ["unauthorized", "dns", "connection", "incorrectResponse", "tls"].map((t) =>
    `urn:ietf:params:acme:error:${t}`
  ),
);

/** Whether a failed order is worth trying at the next CA (see VALIDATION_PROBLEMS). */
export function fallsBack(error: unknown): boolean {
  if (!(error instanceof AcmeError)) return false;
  return error.problem === null || !VALIDATION_PROBLEMS.has(error.problem.type);
}
