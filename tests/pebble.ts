// Starts Let's Encrypt's ACME test server, Pebble (Debian package `pebble`), for tests: on free loopback ports,
// with a TLS certificate from a throwaway local CA, resolving names through the given DNS server (a
// pebble-challtestsrv), so DNS-01 challenges are really validated against the TXT records tests create.

import { LocalCa } from "../lib/tls/local_ca.ts";
import { closedPort } from "./upstreams.ts";

export interface Pebble {
  directoryUrl: string;
  /** PEM of the CA that signed Pebble's own HTTPS certificate (trust it for the ACME API). */
  apiCaPem: string;
  /** Pebble's issuing root (fetched from its management API), to verify the certificates it issues. */
  issuerRootPem(): Promise<string>;
  /**
   * Stops Pebble and starts it again on the same ports with the same TLS certificate: every account, order
   * and its issuing CA are gone, as after a staging CA's reset.
   */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface PebbleOptions {
  /** "127.0.0.1:port" of the DNS server Pebble's validation uses. */
  dnsServer: string;
  /** Environment for Pebble, e.g. PEBBLE_VA_NOSLEEP. */
  env?: Record<string, string>;
  /** Port Pebble connects to for HTTP-01 validation (nexo's http_listen); default an unused one. */
  httpPort?: number;
  /** Lifetime of the certificates Pebble issues, in seconds (Pebble's default is 5 years). */
  validitySeconds?: number;
  /**
   * Require External Account Binding, with these key ids and their base64url HMAC keys (Pebble's
   * `externalAccountMACKeys`), as ZeroSSL and Google Trust Services do.
   */
  eabKeys?: Record<string, string>;
}

/** Starts Pebble and resolves once its directory answers. */
export async function startPebble(options: PebbleOptions): Promise<Pebble> {
  const dir = await Deno.makeTempDir({ prefix: "nexo-pebble-" });
  const ca = await LocalCa.loadOrCreate(`${dir}/ca`);
  const leaf = await ca.issue(["localhost"], { lifetimeMs: 24 * 3600 * 1000 });
  await Deno.writeTextFile(`${dir}/cert.pem`, leaf.certPem);
  await Deno.writeTextFile(`${dir}/key.pem`, leaf.keyPem);
  const [port, managementPort] = [closedPort(), closedPort()];
  await Deno.writeTextFile(
    `${dir}/pebble.json`,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${port}`,
        managementListenAddress: `127.0.0.1:${managementPort}`,
        certificate: `${dir}/cert.pem`,
        privateKey: `${dir}/key.pem`,
        httpPort: options.httpPort ?? closedPort(),
        tlsPort: closedPort(),
        ocspResponderURL: "",
        externalAccountBindingRequired: options.eabKeys !== undefined,
        ...(options.eabKeys ? { externalAccountMACKeys: options.eabKeys } : {}),
        ...(options.validitySeconds ? { certificateValidityPeriod: options.validitySeconds } : {}),
      },
    }),
  );
  const directoryUrl = `https://localhost:${port}/dir`;
  const client = Deno.createHttpClient({ caCerts: [ca.rootCertPem] });
  const launch = async () => {
    const child = new Deno.Command("pebble", {
      args: ["-config", `${dir}/pebble.json`, "-dnsserver", options.dnsServer],
      env: {
        // No random 0-15 s sleeps before validation, and no random nonce rejections: tests stay fast and
        // deterministic. badNonce handling is nexo's client's and tests/acme_issue_test.ts turns rejections on.
        PEBBLE_VA_NOSLEEP: "1",
        PEBBLE_WFE_NONCEREJECT: "0",
        ...options.env,
      },
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const logs: string[] = [];
    const pump = (async () => {
      for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) logs.push(chunk);
    })();
    const kill = async () => {
      child.kill();
      await child.status;
      await pump;
    };
    try {
      await waitUntil(
        async () => {
          const response = await fetch(directoryUrl, { client });
          await response.body?.cancel();
          return response.ok;
        },
        10_000,
        () => logs.join(""),
      );
    } catch (error) {
      await kill();
      throw error;
    }
    return kill;
  };
  let kill: () => Promise<void>;
  try {
    kill = await launch();
  } catch (error) {
    client.close();
    throw error;
  }
  return {
    directoryUrl,
    apiCaPem: ca.rootCertPem,
    async issuerRootPem() {
      const response = await fetch(`https://localhost:${managementPort}/roots/0`, { client });
      return await response.text();
    },
    async restart() {
      await kill();
      kill = await launch();
    },
    async stop() {
      client.close();
      await kill();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

async function waitUntil(
  check: () => Promise<boolean>,
  timeoutMs: number,
  context: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`Pebble did not start within ${timeoutMs} ms:\n${context()}`);
}
