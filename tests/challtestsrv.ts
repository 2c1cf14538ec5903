// Runs Let's Encrypt's pebble-challtestsrv (Debian package `pebble`) for tests: a fake DNS server on 127.0.0.1
// (UDP and TCP) whose TXT records are set through an HTTP management API, so DNS-01 records can really be
// resolved, by Deno.resolveDns and by Pebble. Only its DNS part runs; its HTTP-01/TLS-ALPN-01 servers are off.
//
// Management API behaviour (checked against the Debian build): POST /set-txt {"host","value"} APPENDS a value
// (a second set-txt on one host gives two TXT records; the same value twice gives it twice); POST /clear-txt
// {"host"} removes EVERY value of that host. Hosts are matched exactly, case-sensitively, with the trailing dot,
// so this helper always sends lowercase names ending in ".". An unknown name answers NOERROR with no records
// (Deno.resolveDns throws NotFound); NS queries answer nothing. A failed bind is only logged: the process keeps
// running, which is why start-up checks its own output and proves the ports are its own.
//
// CNAMEs (checked with dig and Deno.resolveDns against the Debian build): POST /set-cname {"host","target"}
// sets a host's one CNAME (a second set-cname replaces it); POST /clear-cname {"host"} removes it. A query
// of ANY type for a CNAME host is answered with the CNAME and then the target's records of that type, in one
// answer: a TXT query for "_acme-challenge.example.org" gives the CNAME plus the target's TXT records, so
// Deno.resolveDns (and Pebble) get the target's values, as from a recursive resolver. A real authoritative
// server without the target's zone answers with the CNAME alone (RFC 1034 §4.3.2; BIND 9 does, see
// tests/acme_dns_test.ts). With no records at the target the answer is the CNAME alone, which Deno.resolveDns
// reports as NotFound "no records found for ... <target>".

const BINARY = "pebble-challtestsrv";
/** Start-up: tries with fresh ports (another process may take one between our probe and its bind). */
const START_ATTEMPTS = 5;
const READY_TIMEOUT_MS = 10_000;

export interface ChallTestSrv {
  /** "127.0.0.1:port" of the DNS server (UDP and TCP), as Pebble's `-dnsserver` and dns_resolvers take it. */
  dnsServer: string;
  /** The DNS port on 127.0.0.1, for `Deno.resolveDns(..., { nameServer: { ipAddr: "127.0.0.1", port } })`. */
  dnsPort: number;
  /** Base URL of the management API, e.g. "http://127.0.0.1:40123". */
  managementUrl: string;
  /** Adds one TXT value at `fqdn` (appends; see the file header). */
  setTxt(fqdn: string, value: string): Promise<void>;
  /** Removes every TXT value at `fqdn`. */
  clearTxt(fqdn: string): Promise<void>;
  /** Makes `fqdn` a CNAME to `target`, replacing its CNAME if it had one (see the file header). */
  setCname(fqdn: string, target: string): Promise<void>;
  /** Removes the CNAME at `fqdn`. */
  clearCname(fqdn: string): Promise<void>;
  /** The TXT values now served for `fqdn` (each record's strings joined); [] when none. */
  txtValues(fqdn: string): Promise<string[]>;
  /** Serves these A (IPv4) or AAAA (IPv6) addresses at `fqdn`, replacing the default answer. */
  addAddresses(fqdn: string, type: "A" | "AAAA", addresses: string[]): Promise<void>;
  /** Serves CAA records at `fqdn` (RFC 8659): each `{ tag, value }`, flags 0. */
  addCaa(fqdn: string, policies: Array<{ tag: string; value: string }>): Promise<void>;
  /**
   * The A answer for names without records of their own: challtestsrv answers 127.0.0.1 by default; ""
   * turns that off, so such names have no A record.
   */
  setDefaultIpv4(address: string): Promise<void>;
  /** Answers every query for `fqdn` with SERVFAIL (a broken zone, a DNSSEC failure). */
  setServfail(fqdn: string): Promise<void>;
  /** Kills the process and waits for it to exit. Safe to call twice. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** The host form the management API matches on: lowercase with a trailing dot. */
export function challTestSrvHost(fqdn: string): string {
  return `${fqdn.trim().toLowerCase().replace(/\.$/, "")}.`;
}

/**
 * Starts pebble-challtestsrv on free loopback ports and resolves once both its management API and its DNS
 * server answer (proven with a probe record). Throws naming the binary's output when it cannot start; install
 * it with `apt-get install pebble` when missing.
 */
export async function startChallTestSrv(): Promise<ChallTestSrv> {
  let lastError: unknown = null;
  for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
    const server = spawn(freePort(), freePort());
    try {
      await server.waitUntilReady();
      return server.api;
    } catch (error) {
      lastError = error;
      await server.api.stop();
    }
  }
  throw new Error(`Cannot start ${BINARY} after ${START_ATTEMPTS} attempts: ${errorText(lastError)}`, {
    cause: lastError,
  });
}

/** A port the OS just handed out for TCP on 127.0.0.1; challtestsrv binds it for TCP and UDP. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

function spawn(
  dnsPort: number,
  managementPort: number,
): { api: ChallTestSrv; waitUntilReady(): Promise<void> } {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(BINARY, {
      args: [
        "-dns01",
        `127.0.0.1:${dnsPort}`,
        "-management",
        `127.0.0.1:${managementPort}`,
        "-http01",
        "",
        "-https01",
        "",
        "-tlsalpn01",
        "",
        // A records answer 127.0.0.1 (the default); no AAAA, so HTTP-01 validation reaches nexo on IPv4.
        "-defaultIPv6",
        "",
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Error(`Cannot run ${BINARY}: not installed (apt-get install pebble)`, { cause: error });
    }
    throw error;
  }
  let output = "";
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) output += chunk;
  };
  const pumped = Promise.all([pump(child.stdout), pump(child.stderr)]);
  let exited = false;
  const status = child.status.then((status) => {
    exited = true;
    return status;
  });
  const managementUrl = `http://127.0.0.1:${managementPort}`;
  const post = async (path: string, body: Record<string, unknown>) => {
    const response = await fetch(`${managementUrl}${path}`, { method: "POST", body: JSON.stringify(body) });
    const text = await response.text();
    if (!response.ok) {
      throw new Error(`${BINARY} ${path} ${JSON.stringify(body)} answered ${response.status}: ${text}`);
    }
  };
  let stopped: Promise<void> | null = null;
  const api: ChallTestSrv = {
    dnsServer: `127.0.0.1:${dnsPort}`,
    dnsPort,
    managementUrl,
    setTxt: (fqdn, value) => post("/set-txt", { host: challTestSrvHost(fqdn), value }),
    clearTxt: (fqdn) => post("/clear-txt", { host: challTestSrvHost(fqdn) }),
    setCname: (fqdn, target) =>
      post("/set-cname", { host: challTestSrvHost(fqdn), target: challTestSrvHost(target) }),
    clearCname: (fqdn) => post("/clear-cname", { host: challTestSrvHost(fqdn) }),
    txtValues: (fqdn) => queryTxt(dnsPort, fqdn),
    addAddresses: (fqdn, type, addresses) =>
      post(type === "A" ? "/add-a" : "/add-aaaa", { host: challTestSrvHost(fqdn), addresses }),
    addCaa: (fqdn, policies) => post("/add-caa", { host: challTestSrvHost(fqdn), policies }),
    setDefaultIpv4: (address) => post("/set-default-ipv4", { ip: address }),
    setServfail: (fqdn) => post("/set-servfail", { host: challTestSrvHost(fqdn) }),
    stop() {
      stopped ??= (async () => {
        if (!exited) {
          try {
            // SIGKILL: on SIGTERM challtestsrv shuts its servers down gracefully, which takes ~5 s; it has no
            // state worth saving.
            child.kill("SIGKILL");
          } catch (error) {
            if (!(error instanceof TypeError)) throw error; // already exited
          }
        }
        await status;
        await pumped;
      })();
      return stopped;
    },
    [Symbol.asyncDispose]: () => api.stop(),
  };
  const waitUntilReady = async () => {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    // A unique name proves that the DNS port and the management port belong to this very process.
    const probe = `probe-${crypto.randomUUID()}.nexo.test`;
    for (;;) {
      if (/bind: |address already in use/.test(output)) throw new Error(`port taken: ${output.trim()}`);
      if (exited) throw new Error(`${BINARY} exited: ${output.trim()}`);
      try {
        await post("/set-txt", { host: challTestSrvHost(probe), value: "ready" });
        if ((await queryTxt(dnsPort, probe, 1000)).includes("ready")) break;
      } catch {
        // Not listening yet.
      }
      if (Date.now() > deadline) {
        throw new Error(`${BINARY} did not answer within ${READY_TIMEOUT_MS} ms: ${output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    await api.clearTxt(probe);
    if (/bind: |address already in use/.test(output)) throw new Error(`port taken: ${output.trim()}`);
  };
  return { api, waitUntilReady };
}

/** TXT values at `fqdn` from the server on `dnsPort`; [] for none. Gives up after `timeoutMs`. */
async function queryTxt(dnsPort: number, fqdn: string, timeoutMs = 5_000): Promise<string[]> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    const records = await Deno.resolveDns(challTestSrvHost(fqdn), "TXT", {
      nameServer: { ipAddr: "127.0.0.1", port: dnsPort },
      signal: controller.signal,
    });
    return records.map((chunks) => chunks.join(""));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
