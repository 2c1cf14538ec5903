// Runs a real BIND 9 (Debian `bind9`) for tests: a primary for one zone on a free loopback port, which takes
// dynamic updates (RFC 2136) signed with a TSIG key this helper makes, and answers queries for what they
// wrote. Its zone has an NS and an A record for ns1, so it is a complete, loadable zone.

import assert from "node:assert/strict";
import { closedPort } from "./upstreams.ts";

export interface Bind {
  /** "127.0.0.1:port": for dns_resolvers, Pebble's -dnsserver and the provider's server. */
  dnsServer: string;
  port: number;
  zone: string;
  keyName: string;
  /** The key's secret, base64 (what `tsig-keygen` prints inside `secret "..."`). */
  secretBase64: string;
  /** A key file as `tsig-keygen` writes it, for tsig_secret_file. */
  keyFile: string;
  /** TXT values at `fqdn`, asked of this server. */
  txtValues(fqdn: string): Promise<string[]>;
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const READY_TIMEOUT_MS = 15_000;

/** Starts named with `zone` and a fresh hmac-sha256 key named `keyName`; throws with named's output. */
export async function startBind(zone = "example.test", keyName = "nexo-key"): Promise<Bind> {
  const dir = await Deno.makeTempDir({ prefix: "nexo-bind-" });
  const secretBase64 = crypto.getRandomValues(new Uint8Array(32)).toBase64();
  const keyClause = `key "${keyName}" {\n\talgorithm hmac-sha256;\n\tsecret "${secretBase64}";\n};\n`;
  const keyFile = `${dir}/${keyName}.key`;
  await Deno.writeTextFile(keyFile, keyClause, { mode: 0o600 });
  await Deno.writeTextFile(
    `${dir}/zone.db`,
    [
      "$TTL 60",
      `@ IN SOA ns1.${zone}. hostmaster.${zone}. ( 1 60 60 600 60 )`,
      `@ IN NS ns1.${zone}.`,
      "ns1 IN A 127.0.0.1",
      "",
    ].join("\n"),
  );
  for (let attempt = 1;; attempt++) {
    const port = closedPort();
    await Deno.writeTextFile(
      `${dir}/named.conf`,
      [
        "options {",
        `  directory "${dir}";`,
        `  pid-file "${dir}/named.pid";`,
        `  listen-on port ${port} { 127.0.0.1; };`,
        "  listen-on-v6 { none; };",
        "  recursion no;",
        "  dnssec-validation no;",
        "  notify no;",
        "};",
        keyClause,
        `zone "${zone}" {`,
        "  type primary;",
        `  file "${dir}/zone.db";`,
        `  allow-update { key "${keyName}"; };`,
        "};",
        "",
      ].join("\n"),
    );
    // Debian puts named in /usr/sbin, which a plain user's PATH (and CI's env -i one) leaves out.
    const child = new Deno.Command("/usr/sbin/named", {
      args: ["-g", "-c", `${dir}/named.conf`],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    let output = "";
    const pump = (async () => {
      for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) output += chunk;
    })();
    const stop = async () => {
      try {
        child.kill("SIGKILL");
      } catch {
        // exited already
      }
      await child.status;
      await pump;
    };
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (
      !/running$/m.test(output) && !/exiting \(due to fatal error\)/.test(output) && Date.now() < deadline
    ) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    if (/running$/m.test(output) && /zone .* loaded serial/.test(output)) {
      const server = { ipAddr: "127.0.0.1", port };
      const api: Bind = {
        dnsServer: `127.0.0.1:${port}`,
        port,
        zone,
        keyName,
        secretBase64,
        keyFile,
        async txtValues(fqdn) {
          try {
            const records = await Deno.resolveDns(fqdn, "TXT", { nameServer: server });
            return records.map((chunks) => chunks.join(""));
          } catch (error) {
            if (error instanceof Deno.errors.NotFound) return [];
            throw error;
          }
        },
        async stop() {
          await stop();
          await Deno.remove(dir, { recursive: true });
        },
        [Symbol.asyncDispose]: () => api.stop(),
      };
      return api;
    }
    await stop();
    if (attempt >= 3 || !/address in use/.test(output)) {
      await Deno.remove(dir, { recursive: true });
      throw new Error(`named did not start (apt-get install bind9):\n${output}`);
    }
  }
}

/** Adds a TXT record with BIND's own nsupdate, behind the provider's back (a crashed run's leftover). */
export async function nsupdateAdd(bind: Bind, fqdn: string, value: string): Promise<void> {
  const child = new Deno.Command("nsupdate", {
    args: ["-k", bind.keyFile],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(
    new TextEncoder().encode(
      `server 127.0.0.1 ${bind.port}\nzone ${bind.zone}\nupdate add ${fqdn} 60 TXT "${value}"\nsend\n`,
    ),
  );
  await writer.close();
  const output = await child.output();
  assert.ok(output.success, new TextDecoder().decode(output.stderr));
}
