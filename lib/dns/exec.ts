// The exec DNS provider: a program the user writes publishes and removes the TXT records, called the way
// lego's exec provider calls it (`program [args...] present|cleanup FQDN. VALUE`), so hooks written for lego,
// Traefik or certbot wrappers work unchanged. It runs one call at a time with a timeout and reports the
// program's stderr on failure; it does not check propagation (propagation.ts does).

import { errorMessage } from "../error_message.ts";
import {
  assertChallengeName,
  type DnsProvider,
  DnsProviderError,
  normalizeDnsName,
  type TxtRecordHandle,
} from "./provider.ts";
import { startTimer, stopTimer, type Timer } from "../timers.ts";

export interface ExecDnsProviderOptions {
  /** The program (an absolute path) and its fixed arguments; the action, name and value are appended. */
  command: readonly string[];
  /** A run taking longer is killed (SIGTERM, then SIGKILL after `KILL_GRACE_MS`) and fails; in ms. */
  timeoutMs: number;
  /** The zone the program manages, or null to find it with `lookupZone`. */
  zone: string | null;
  /** The zone apex holding a name, by NS queries (name_servers.ts); absent: a null `zone` fails findZone. */
  lookupZone?: (fqdn: string) => Promise<string>;
  /**
   * The TXT values now published at a name (at the zone's authoritative servers); lets `cleanupStale()` find
   * records a crashed run left, since the exec protocol cannot list them. Absent: cleanupStale() removes none.
   */
  lookupTxt?: (fqdn: string) => Promise<string[]>;
}

/**
 * A killed program gets this long to exit on SIGTERM before SIGKILL, and the most of its stderr an error
 * quotes: 2 s lets a script finish an API call it is in; 2,000 characters hold any useful error and bound
 * the log line.
 */
const KILL_GRACE_MS = 2_000;
const STDERR_TAIL_CHARS = 2_000;
/** How long stderr may stay open after the program exited (a child it left behind may hold it). */
const STDERR_SETTLE_MS = 500;

/** Runs the user's hook program for each record. Its `name` is "exec". */
export class ExecDnsProvider implements DnsProvider {
  readonly name = "exec";
  readonly #options: ExecDnsProviderOptions;
  /** Runs one at a time: a hook editing a zone file or calling an API is rarely safe to run twice at once. */
  #queue: Promise<unknown> = Promise.resolve();
  /** "fqdn value" of records this provider published and has not removed, with their handles. */
  readonly #published = new Map<string, TxtRecordHandle>();
  /** "fqdn value" of records this provider removed (a second delete of the handle does nothing). */
  readonly #deleted = new Set<string>();

  constructor(options: ExecDnsProviderOptions) {
    if (!options.command[0]?.startsWith("/")) {
      throw new TypeError(
        `The exec DNS provider needs an absolute program path, got "${options.command[0]}"`,
      );
    }
    this.#options = options;
  }

  /** There is no credential to check; with names, each must be inside `zone` when one is set. */
  async verify(fqdns: readonly string[] = []): Promise<void> {
    if (this.#options.zone === null) return;
    for (const fqdn of fqdns) await this.findZone(fqdn);
  }

  async findZone(fqdn: string): Promise<string> {
    const name = normalizeDnsName(fqdn);
    const zone = this.#options.zone;
    if (zone !== null) {
      if (name === zone || name.endsWith(`.${zone}`)) return zone;
      throw new DnsProviderError(
        "zone_not_found",
        `"${name}" is outside the zone ${zone} the exec hook serves (dns.exec.zone): add a dns.zones entry ` +
          `for its zone, or fix dns.exec.zone`,
      );
    }
    if (this.#options.lookupZone === undefined) {
      throw new DnsProviderError("zone_not_found", `No zone known for "${name}": set dns.exec.zone`);
    }
    try {
      return normalizeDnsName(await this.#options.lookupZone(name));
    } catch (error) {
      throw new DnsProviderError(
        "zone_not_found",
        `Cannot find the zone of "${name}": ${errorMessage(error)}; set dns.exec.zone`,
        { cause: error },
      );
    }
  }

  async createTxtRecord(fqdn: string, value: string): Promise<TxtRecordHandle> {
    const name = normalizeDnsName(fqdn);
    const known = this.#published.get(`${name} ${value}`);
    if (known !== undefined) return known;
    const zone = await this.findZone(name).catch(() => name.replace(/^_acme-challenge\./, ""));
    await this.#run("present", name, value);
    this.#deleted.delete(`${name} ${value}`);
    const handle: TxtRecordHandle = { provider: this.name, fqdn: name, value, zone, ref: {} };
    this.#published.set(`${name} ${value}`, handle);
    return handle;
  }

  async deleteTxtRecord(handle: TxtRecordHandle): Promise<void> {
    if (handle.provider !== this.name) {
      throw new TypeError(`The exec DNS provider cannot delete a record ${handle.provider} created`);
    }
    const key = `${handle.fqdn} ${handle.value}`;
    // A handle from this run that was already deleted stays deleted; one revived from disk after a restart
    // is handed to the hook, which must treat an absent record as done (lego's contract too).
    if (this.#deleted.has(key)) return;
    await this.#run("cleanup", handle.fqdn, handle.value);
    this.#published.delete(key);
    this.#deleted.add(key);
  }

  async cleanupStale(fqdn: string): Promise<number> {
    const name = assertChallengeName(fqdn);
    if (this.#options.lookupTxt === undefined) return 0;
    let values: string[];
    try {
      values = await this.#options.lookupTxt(name);
    } catch (error) {
      throw new DnsProviderError(
        "unavailable",
        `Cannot list the TXT records at ${name}: ${errorMessage(error)}`,
        {
          cause: error,
        },
      );
    }
    for (const value of new Set(values)) {
      await this.#run("cleanup", name, value);
      this.#published.delete(`${name} ${value}`);
    }
    return new Set(values).size;
  }

  /** One call of the hook, queued behind the others; throws a DnsProviderError when it does not exit 0. */
  #run(action: "present" | "cleanup", fqdn: string, value: string): Promise<void> {
    const run = this.#queue.then(() => runHook(this.#options, [action, `${fqdn}.`, value]));
    this.#queue = run.catch(() => {});
    return run;
  }
}

/** Runs `command... args` with a timeout; resolves on exit 0, else throws naming the exit and stderr's end. */
async function runHook(options: ExecDnsProviderOptions, args: string[]): Promise<void> {
  const [program, ...fixed] = options.command as [string, ...string[]];
  // The fixed arguments may carry a token: messages (the log, meta.json) name the program and the call only.
  const shown = [program, ...args].join(" ");
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(program, {
      args: [...fixed, ...args],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
  } catch (error) {
    const hint = error instanceof Deno.errors.NotCapable
      ? `nexo may not run it: run nexo with --allow-run=${program} (the compiled binary and the Docker image ` +
        `run only /etc/nexo/dns-hook)`
      : error instanceof Deno.errors.NotFound
      ? "it does not exist (check dns.exec.command)"
      : error instanceof Deno.errors.PermissionDenied
      ? `it is not executable by nexo's user (chmod +x ${program})`
      : errorMessage(error);
    throw new DnsProviderError("rejected", `Cannot run the DNS hook ${program}: ${hint}`, { cause: error });
  }
  let timedOut = false;
  const timer = startTimer(() => {
    timedOut = true;
    kill(child, "SIGTERM");
    killTimer = startTimer(() => kill(child, "SIGKILL"), KILL_GRACE_MS);
  }, options.timeoutMs);
  let killTimer: Timer | undefined;
  try {
    const tail = new StderrTail(child.stderr);
    const status = await child.status;
    stopTimer(timer);
    // A program that left a child holding stderr (a backgrounded `sleep`) must not hold nexo too.
    const stderr = await tail.settle(STDERR_SETTLE_MS);
    if (timedOut) {
      throw new DnsProviderError(
        "unavailable",
        `The DNS hook "${shown}" did not finish within ${options.timeoutMs} ms and was killed` +
          (stderr === "" ? "" : `; its stderr ended: ${stderr}`) + ` (raise dns.exec.timeout if it is slow)`,
      );
    }
    if (!status.success) {
      const how = status.signal === null ? `exited with ${status.code}` : `was killed by ${status.signal}`;
      throw new DnsProviderError(
        "rejected",
        `The DNS hook "${shown}" ${how}` + (stderr === "" ? " and wrote nothing to stderr" : `: ${stderr}`),
      );
    }
  } finally {
    stopTimer(timer);
    stopTimer(killTimer);
  }
}

function kill(child: Deno.ChildProcess, signal: Deno.Signal): void {
  try {
    child.kill(signal);
  } catch {
    // it exited meanwhile
  }
}

// deno-lint-ignore no-control-regex -- escaping control characters is the point
const CONTROL_BUT_NEWLINE = /[\u0000-\u0009\u000b-\u001f\u007f]/g;

/** stderr as it arrives, keeping only its last STDERR_TAIL_CHARS characters. */
class StderrTail {
  #text = "";
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #done: Promise<void>;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
    this.#done = this.#read();
  }

  async #read(): Promise<void> {
    const decoder = new TextDecoder();
    try {
      while (true) {
        const { done, value } = await this.#reader.read();
        if (done) break;
        this.#text = (this.#text + decoder.decode(value, { stream: true })).slice(-STDERR_TAIL_CHARS);
      }
    } catch {
      // cancelled by settle(), or the pipe broke: keep what came
    }
  }

  /** The text once the stream ends, or after `waitMs` (the stream is then cancelled), escaped for a log line. */
  async settle(waitMs: number): Promise<string> {
    let timer: Timer | undefined;
    const late = new Promise<void>((resolve) => timer = startTimer(resolve, waitMs));
    await Promise.race([this.#done, late]);
    stopTimer(timer);
    await this.#reader.cancel().catch(() => {});
    await this.#done;
    return this.#text.trim()
      .replace(CONTROL_BUT_NEWLINE, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`)
      .replaceAll("\n", " | ");
  }
}
