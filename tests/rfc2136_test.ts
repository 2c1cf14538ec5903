// The RFC 2136 provider against a real BIND 9: the DnsProvider conformance suite (records written by nexo's
// own signed updates, stale ones left by BIND's own nsupdate), a wrong secret and an unknown key named with
// the server's answer, a zone the key may not update, a server that is down, and an answer whose TSIG does
// not verify (a proxy that alters it), which must not count as success.

import assert from "node:assert/strict";
import { testDnsProviderConformance } from "../lib/dns/provider_conformance.ts";
import { DnsProviderError } from "../lib/dns/provider.ts";
import { Rfc2136DnsProvider } from "../lib/dns/rfc2136.ts";
import { parseTsigSecret } from "../lib/config/tsig_secret.ts";
import { type Bind, nsupdateAdd, startBind } from "./bind.ts";
import { runDoctor, startNexo } from "./harness.ts";
import { startPebble } from "./pebble.ts";
import { closedPort, startEchoUpstream } from "./upstreams.ts";

function providerFor(
  bind: Bind,
  overrides: { port?: number; keyName?: string; secret?: Uint8Array; zone?: string } = {},
) {
  return new Rfc2136DnsProvider({
    server: { hostname: "127.0.0.1", port: overrides.port ?? bind.port },
    key: {
      name: overrides.keyName ?? bind.keyName,
      algorithm: "hmac-sha256",
      secret: overrides.secret ?? parseTsigSecret(Deno.readTextFileSync(bind.keyFile)).secret,
    },
    zone: overrides.zone ?? null,
  });
}

testDnsProviderConformance("Rfc2136DnsProvider (BIND 9)", async () => {
  const bind = await startBind();
  return {
    provider: providerFor(bind),
    zone: bind.zone,
    txtValues: (fqdn) => bind.txtValues(fqdn),
    addStaleRecord: (fqdn, value) => nsupdateAdd(bind, fqdn, value),
    close: () => bind.stop(),
  };
});

Deno.test("the RFC 2136 provider names the key and BIND's answer when a key is wrong, unknown or not allowed", async () => {
  await using bind = await startBind();
  const name = `_acme-challenge.${bind.zone}`;
  const wrong = providerFor(bind, { secret: new Uint8Array(32).fill(7) });
  const badSig = await wrong.verify([name]).then(() => null, (error) => error);
  assert.ok(badSig instanceof DnsProviderError && badSig.kind === "credentials", String(badSig));
  assert.match(
    badSig.message,
    /answered NOTAUTH, BADSIG; the server does not accept the TSIG key "nexo-key"/,
  );
  const unknown = await providerFor(bind, { keyName: "nobody" }).createTxtRecord(name, "x").catch((e) => e);
  assert.match(String(unknown.message), /answered NOTAUTH, BADKEY/);
  assert.deepEqual(await bind.txtValues(name), [], "nothing was written");
  // The zone ns1's A lives in: the key may update the zone, but not another zone BIND does not serve.
  const outside = await providerFor(bind).createTxtRecord("_acme-challenge.elsewhere.invalid", "x").catch((
    e,
  ) => e);
  assert.equal(outside.kind, "zone_not_found");
  assert.match(outside.message, /holds no zone for "_acme-challenge\.elsewhere\.invalid"/);
});

Deno.test("the RFC 2136 provider reports a server that is down as unavailable, naming it", async () => {
  await using bind = await startBind();
  const port = closedPort();
  const down = new Rfc2136DnsProvider({
    server: { hostname: "127.0.0.1", port },
    key: { name: bind.keyName, algorithm: "hmac-sha256", secret: new Uint8Array(32) },
    zone: bind.zone,
  });
  const error = await down.createTxtRecord(`_acme-challenge.${bind.zone}`, "x").catch((e) => e);
  assert.ok(error instanceof DnsProviderError && error.kind === "unavailable", String(error));
  assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${port} did not answer`));
});

Deno.test("an answer whose TSIG does not verify is not taken as success (RFC 8945 §5.3)", async () => {
  await using bind = await startBind();
  // A TCP relay to BIND that changes the case of one letter of the zone name in every answer: the record
  // still reads the same, but the MAC no longer matches.
  const relay = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const relaying = (async () => {
    for await (const client of relay) {
      (async () => {
        const server = await Deno.connect({ hostname: "127.0.0.1", port: bind.port });
        // One length-prefixed message each way (RFC 1035 §4.2.2), read whole whatever the read sizes.
        const request = await readMessage(client);
        await server.write(request);
        const answer = await readMessage(server);
        answer[2 + 13] = answer[2 + 13]! ^ 0x20; // first letter of the zone name's first label
        await client.write(answer);
        server.close();
        client.close();
      })();
    }
  })();
  try {
    // The zone is given: the relay speaks TCP only, and zone lookups are UDP queries.
    const provider = providerFor(bind, { port: relay.addr.port, zone: bind.zone });
    const error = await provider.createTxtRecord(`_acme-challenge.${bind.zone}`, "tampered").catch((e) => e);
    assert.ok(error instanceof DnsProviderError, String(error));
    assert.match(error.message, /answer is signed wrongly, so it cannot be trusted/);
  } finally {
    relay.close();
    await relaying.catch(() => {});
  }
});

Deno.test("nexo obtains a wildcard certificate through RFC 2136 updates to BIND, which Pebble validates, and cleans up", async () => {
  await using bind = await startBind();
  const pebble = await startPebble({ dnsServer: bind.dnsServer });
  const app = startEchoUpstream();
  const caFile = await Deno.makeTempFile({ suffix: ".pem" });
  await Deno.writeTextFile(caFile, pebble.apiCaPem);
  try {
    // No acme.dns_resolvers: propagation is checked at the RFC 2136 server itself.
    const nexo = await startNexo(
      [
        "issuer: acme",
        "acme:",
        `  directory: ${pebble.directoryUrl}`,
        `  ca_cert: ${caFile}`,
        "dns:",
        "  provider: rfc2136",
        "  rfc2136:",
        `    server: "${bind.dnsServer}"`,
        `    tsig_key: ${bind.keyName}`,
        `    tsig_secret_file: ${bind.keyFile}`,
        `wildcards: ["*.${bind.zone}"]`,
        "proxies:",
        `  "app.${bind.zone}":`,
        `    upstream: ${app.url}`,
        "",
      ].join("\n"),
    );
    try {
      await nexo.waitForLog(
        (l) => l.msg === "certificate installed" && l.names === `*.${bind.zone},${bind.zone}`,
        60_000,
      );
      assert.deepEqual(
        await bind.txtValues(`_acme-challenge.${bind.zone}`),
        [],
        "the challenge records are gone",
      );
      assert.ok(!nexo.output().includes(bind.secretBase64), "the TSIG secret is never logged");
    } finally {
      await nexo.stop();
    }
  } finally {
    await pebble.stop();
    await app.close();
    await Deno.remove(caFile);
  }
});

Deno.test("nexo doctor checks the RFC 2136 key at the server, and with --write-test writes, sees and deletes", async () => {
  await using bind = await startBind();
  const dir = await Deno.makeTempDir({ prefix: "nexo-doctor-rfc2136-" });
  const doctor = async (keyFile: string, args: string[] = []) => {
    const config = [
      `base_dir: ${dir}/base`,
      `listen: "127.0.0.1:${closedPort()}"`,
      "acme:",
      `  directory: https://localhost:${closedPort()}/dir`,
      "dns:",
      "  provider: rfc2136",
      "  rfc2136:",
      `    server: "${bind.dnsServer}"`,
      `    tsig_key: ${bind.keyName}`,
      `    tsig_secret_file: ${keyFile}`,
      "proxies:",
      `  "app.${bind.zone}":`,
      "    upstream: http://127.0.0.1:9",
      "",
    ].join("\n");
    const run = await runDoctor(dir, config, { args });
    return run.findings.filter((f) => f.area === "dns provider");
  };
  try {
    const checked = await doctor(bind.keyFile, ["--write-test"]);
    assert.deepEqual(checked.map((f) => [f.subject, f.status]), [
      [`zone ${bind.zone}`, "ok"],
      [`DNS edit in ${bind.zone}`, "ok"],
    ], JSON.stringify(checked));
    assert.match(checked[1]!.message, /created, seen by the name servers in [\d.]+ s; deleted again/);
    assert.deepEqual(await bind.txtValues(`_acme-challenge.app.${bind.zone}`), []);
    const wrongKey = `${dir}/wrong.key`;
    await Deno.writeTextFile(wrongKey, new Uint8Array(32).fill(3).toBase64());
    const refused = await doctor(wrongKey);
    assert.equal(refused[0]?.status, "problem");
    assert.match(refused[0]?.message ?? "", /answered NOTAUTH, BADSIG/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** One DNS-over-TCP message with its two-byte length, read whole. */
async function readMessage(conn: Deno.Conn): Promise<Uint8Array> {
  const buffer = new Uint8Array(65_537);
  let length = 0;
  while (length < 2 || length < 2 + ((buffer[0]! << 8) | buffer[1]!)) {
    const read = await conn.read(buffer.subarray(length));
    if (read === null) throw new Error(`the connection closed after ${length} bytes`);
    length += read;
  }
  return buffer.slice(0, length);
}
