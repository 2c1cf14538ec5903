// The acme-dns provider against a fake acme-dns (tests/fake_acme_dns.ts) whose values are served by
// pebble-challtestsrv at the account's fulldomain, with `_acme-challenge.example.org` a CNAME to it: the
// DnsProvider conformance suite read through real DNS, the errors a user meets (a wrong password, allowfrom,
// a name the account does not serve, a missing CNAME, a private CA), the two rolling slots, where a
// propagation check must look (an authoritative BIND answers the CNAME alone), and Pebble validating DNS-01
// through the CNAME.

import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { createAcmeClient, ensureAccount } from "../lib/acme/acme_client.ts";
import { createPrivateKey } from "../lib/acme/csr.ts";
import { issueCertificate } from "../lib/acme/issue.ts";
import { dnsSolver } from "../lib/acme/solvers.ts";
import { AcmeDnsProvider, type AcmeDnsProviderOptions } from "../lib/dns/acme_dns.ts";
import { DnsPropagationError, waitForTxt } from "../lib/dns/propagation.ts";
import { DnsProviderError, providerRecordName } from "../lib/dns/provider.ts";
import { conformanceValue, testDnsProviderConformance } from "../lib/dns/provider_conformance.ts";
import { LocalCa } from "../lib/tls/local_ca.ts";
import { parseCertificate } from "../lib/tls/pem.ts";
import { startBind } from "./bind.ts";
import { type ChallTestSrv, startChallTestSrv } from "./challtestsrv.ts";
import { type FakeAcmeDns, type FakeAcmeDnsAccount, startFakeAcmeDns } from "./fake_acme_dns.ts";
import { startPebble } from "./pebble.ts";

const DOMAIN = "example.org";
const NAME = `_acme-challenge.${DOMAIN}`;
const v = conformanceValue;

/** Deno.resolveDns asking challtestsrv, for the provider's CNAME check. */
function resolverAt(port: number): typeof Deno.resolveDns {
  return ((query: string, type: "CNAME", options?: Deno.ResolveDnsOptions) =>
    Deno.resolveDns(query, type, {
      ...options,
      nameServer: { ipAddr: "127.0.0.1", port },
    })) as typeof Deno.resolveDns;
}

interface World {
  dns: ChallTestSrv;
  fake: FakeAcmeDns;
  account: FakeAcmeDnsAccount;
  provider: AcmeDnsProvider;
  /** A provider for the same account with some options changed. */
  providerWith(options: Partial<AcmeDnsProviderOptions>): AcmeDnsProvider;
  /** An update sent with the account's credentials behind the provider's back. */
  updateBehindTheBack(value: string): Promise<void>;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** challtestsrv, the fake with one account (registered with `allowfrom`), and `_acme-challenge` delegated. */
async function startWorld(options: { allowfrom?: string[]; delegate?: boolean; domain?: string } = {}) {
  const domain = options.domain ?? DOMAIN;
  const dns = await startChallTestSrv();
  const fake = await startFakeAcmeDns({ challtestsrv: dns });
  const account = await fake.register(options.allowfrom);
  if (options.delegate !== false) await fake.delegate(domain, account);
  const providerWith = (changes: Partial<AcmeDnsProviderOptions>) =>
    new AcmeDnsProvider({
      api: fake.api,
      username: account.username,
      password: account.password,
      subdomain: account.subdomain,
      fulldomain: account.fulldomain,
      domain,
      resolveDns: resolverAt(dns.dnsPort),
      ...changes,
    });
  const world: World = {
    dns,
    fake,
    account,
    provider: providerWith({}),
    providerWith,
    updateBehindTheBack: async (value) => {
      const response = await fetch(`${fake.api}/update`, {
        method: "POST",
        headers: { "x-api-user": account.username, "x-api-key": account.password },
        body: JSON.stringify({ subdomain: account.subdomain, txt: value }),
      });
      assert.equal(response.status, 200, await response.text());
    },
    close: async () => {
      await fake.close();
      await dns.stop();
    },
    [Symbol.asyncDispose]: () => world.close(),
  };
  return world;
}

/** Update requests the fake received. */
function updates(fake: FakeAcmeDns) {
  return fake.requests.filter((request) => request.path === "/update");
}

/** Update requests that carried a value (verify() sends one with an empty value, which acme-dns refuses). */
function valueUpdates(fake: FakeAcmeDns) {
  return updates(fake).filter((request) => JSON.parse(request.body).txt !== "");
}

testDnsProviderConformance("AcmeDnsProvider (fake acme-dns, read through the CNAME)", async () => {
  const world = await startWorld();
  return {
    provider: world.provider,
    zone: DOMAIN,
    names: [NAME],
    // challtestsrv follows the CNAME: what a recursive resolver (and the CA) sees at _acme-challenge.
    txtValues: (fqdn) => world.dns.txtValues(fqdn),
    addStaleRecord: async (fqdn, value) => {
      assert.equal(fqdn, NAME, "acme-dns holds values for its one name only");
      await world.updateBehindTheBack(value);
    },
    close: () => world.close(),
  };
});

Deno.test("acme-dns: a wrong password is a credentials error naming the API and user, never the password", async () => {
  await using world = await startWorld();
  const wrong = "x".repeat(40);
  const provider = world.providerWith({ password: wrong });
  for (const call of [() => provider.verify([NAME]), () => provider.createTxtRecord(NAME, v("a"))]) {
    const error = await call().then(() => null, (e) => e);
    assert.ok(error instanceof DnsProviderError && error.kind === "credentials", String(error));
    assert.equal(error.status, 401);
    assert.ok(error.message.includes(`acme-dns at ${world.fake.api} (user "${world.account.username}")`));
    assert.match(error.message, /answered HTTP 401 \{"error": "forbidden"\}/);
    for (const secret of [wrong, world.account.password]) {
      assert.ok(!error.message.includes(secret.slice(0, 6)), "no fragment of a password");
    }
  }
  assert.deepEqual(world.fake.txtValues(world.account.subdomain), [], "nothing stored");
});

Deno.test("acme-dns: an account whose allowfrom leaves out this machine fails with a hint at allowfrom; one that includes it works", async () => {
  await using world = await startWorld({ allowfrom: ["192.0.2.0/24", "2001:db8::/32"] });
  const error = await world.provider.verify([NAME]).then(() => null, (e) => e);
  assert.ok(error instanceof DnsProviderError && error.kind === "credentials", String(error));
  assert.match(error.message, /outside the account's allowfrom list/);
  assert.match(
    error.message,
    /this machine's address as acme-dns sees it must be inside one of those CIDR ranges/,
  );
  await assert.rejects(world.provider.createTxtRecord(NAME, v("a")), /allowfrom/);
  assert.equal(updates(world.fake).at(-1)?.remoteAddr, "127.0.0.1");

  const allowed = await world.fake.register(["127.0.0.0/8"]);
  await world.fake.delegate(DOMAIN, allowed);
  const provider = world.providerWith({
    username: allowed.username,
    password: allowed.password,
    subdomain: allowed.subdomain,
    fulldomain: allowed.fulldomain,
  });
  await provider.verify([NAME]);
  await provider.createTxtRecord(NAME, v("allowed"));
  assert.deepEqual(await world.dns.txtValues(NAME), [v("allowed")]);
});

Deno.test("acme-dns: a name the account does not serve is zone_not_found, and nothing is sent", async () => {
  await using world = await startWorld();
  const before = world.fake.requests.length;
  for (const name of ["_acme-challenge.www.example.org", "_acme-challenge.example.net"]) {
    const error = await world.provider.createTxtRecord(name, v("a")).then(() => null, (e) => e);
    assert.ok(error instanceof DnsProviderError && error.kind === "zone_not_found", String(error));
    assert.ok(error.message.includes(`serves only "${NAME}" (a CNAME to ${world.account.fulldomain})`));
    await assert.rejects(world.provider.findZone(name), (e: DnsProviderError) => e.kind === "zone_not_found");
  }
  assert.equal(world.fake.requests.length, before);
});

Deno.test("acme-dns without a domain: several names delegated to one account share its two values", async () => {
  await using world = await startWorld();
  await world.fake.delegate("example.net", world.account);
  const provider = world.providerWith({ domain: null });
  const net = "_acme-challenge.example.net";
  await provider.verify([NAME, net]);
  await provider.createTxtRecord(NAME, v("org"));
  await provider.createTxtRecord(net, v("net"));
  for (const name of [NAME, net]) {
    assert.deepEqual((await world.dns.txtValues(name)).sort(), [v("net"), v("org")]);
  }
  const undelegated = await provider.verify(["_acme-challenge.example.com"]).then(() => null, (e) => e);
  assert.equal(undelegated?.kind, "zone_not_found");
  assert.match(undelegated.message, /"_acme-challenge\.example\.com" has no CNAME record/);
});

Deno.test("acme-dns: verify() finds a missing or misdirected _acme-challenge CNAME", async () => {
  await using world = await startWorld({ delegate: false });
  const missing = await world.provider.verify([NAME]).then(() => null, (e) => e);
  assert.ok(missing instanceof DnsProviderError && missing.kind === "zone_not_found", String(missing));
  assert.ok(
    missing.message.includes(`set "${NAME}. CNAME ${world.account.fulldomain}." in the zone of ${DOMAIN}`),
  );
  await world.dns.setCname(NAME, "someone-else.auth.acme-dns.test");
  const misdirected = await world.provider.verify([NAME]).then(() => null, (e) => e);
  assert.match(String(misdirected?.message), /is a CNAME to "someone-else\.auth\.acme-dns\.test", not to /);
  await world.fake.delegate(DOMAIN, world.account);
  await world.provider.verify([NAME]);
});

Deno.test("acme-dns keeps two values: a third pushes out the oldest, and the newest is never sent twice", async () => {
  await using world = await startWorld();
  const { provider, dns, fake } = world;
  await provider.createTxtRecord(NAME, v("first"));
  await provider.createTxtRecord(NAME, v("second"));
  assert.deepEqual((await dns.txtValues(NAME)).sort(), [v("first"), v("second")]);
  await provider.createTxtRecord(NAME, v("third"));
  assert.deepEqual((await dns.txtValues(NAME)).sort(), [v("second"), v("third")]);
  await provider.createTxtRecord(NAME, v("third"));
  assert.equal(updates(fake).length, 3, "the newest value is not sent again");
  assert.deepEqual((await dns.txtValues(NAME)).sort(), [v("second"), v("third")]);
  // The older value sent again overwrites itself and becomes the newer one, so the next value pushes out
  // "third", not "second".
  await provider.createTxtRecord(NAME, v("second"));
  await provider.createTxtRecord(NAME, v("fourth"));
  assert.deepEqual((await dns.txtValues(NAME)).sort(), [v("fourth"), v("second")]);
  // acme-dns orders its slots by whole seconds: each update starts a second after the one before.
  const times = updates(fake).map((request) => request.at);
  for (let i = 1; i < times.length; i++) assert.ok(times[i]! - times[i - 1]! >= 1000, `updates ${times}`);
});

Deno.test("acme-dns: after an update whose answer was lost (a 502 from a proxy after the write), both values are sent again", async () => {
  await using world = await startWorld();
  const { provider, dns, fake } = world;
  await provider.createTxtRecord(NAME, v("apex"));
  fake.failNext(1, { status: 502, body: "Bad Gateway", afterWrite: true });
  const lost = await provider.createTxtRecord(NAME, v("wildcard")).then(() => null, (e) => e);
  assert.equal(lost?.kind, "unavailable");
  await provider.createTxtRecord(NAME, v("apex"));
  await provider.createTxtRecord(NAME, v("wildcard"));
  assert.deepEqual((await dns.txtValues(NAME)).sort(), [v("apex"), v("wildcard")]);
});

Deno.test("acme-dns over HTTPS with a private CA: trusted through caCertsPem, refused without it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nexo-acme-dns-ca-" });
  await using dns = await startChallTestSrv();
  try {
    const ca = await LocalCa.loadOrCreate(`${dir}/ca`);
    const leaf = await ca.issue(["localhost"], { lifetimeMs: 3600_000 });
    await using fake = await startFakeAcmeDns({
      challtestsrv: dns,
      tls: { certPem: leaf.certPem, keyPem: leaf.keyPem, caPem: ca.rootCertPem },
    });
    const account = await fake.register();
    await fake.delegate(DOMAIN, account);
    const options = { api: fake.api, ...account, domain: DOMAIN };
    const trusted = new AcmeDnsProvider({ ...options, caCertsPem: [ca.rootCertPem] });
    await trusted.createTxtRecord(NAME, v("over-tls"));
    assert.deepEqual(await dns.txtValues(NAME), [v("over-tls")]);
    const untrusted = await new AcmeDnsProvider(options).createTxtRecord(NAME, v("x")).then(
      () => null,
      (e) => e,
    );
    assert.ok(untrusted instanceof DnsProviderError && untrusted.kind === "unavailable", String(untrusted));
    assert.match(
      untrusted.message,
      /acme-dns at https:\/\/localhost:\d+ .* failed: .*certificate.*give nexo that CA's/i,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("acme-dns propagation: an authoritative server answers _acme-challenge with the CNAME alone; the value is at recordName()", async () => {
  // BIND stands for the domain's own authoritative server (recursion off), holding the CNAME as the user set
  // it; challtestsrv stands for the acme-dns server's DNS, which serves the fulldomain.
  await using bind = await startBind();
  await using world = await startWorld({ domain: bind.zone, delegate: false });
  const name = `_acme-challenge.${bind.zone}`;
  await nsupdate(
    bind.keyFile,
    bind.port,
    bind.zone,
    `update add ${name} 60 CNAME ${world.account.fulldomain}.`,
  );
  await world.provider.createTxtRecord(name, v("delegated"));

  await assert.rejects(
    Deno.resolveDns(name, "TXT", { nameServer: { ipAddr: "127.0.0.1", port: bind.port } }),
    (error: Error) =>
      error instanceof Deno.errors.NotFound && error.message.includes(world.account.fulldomain),
  );
  await assert.rejects(
    waitForTxt(name, v("delegated"), { resolvers: [bind.dnsServer], timeoutMs: 1_000, intervalMs: 100 }),
    DnsPropagationError,
  );
  const recordName = providerRecordName(world.provider, name);
  assert.equal(recordName, world.account.fulldomain);
  await waitForTxt(recordName, v("delegated"), { resolvers: [world.dns.dnsServer], timeoutMs: 5_000 });
  // challtestsrv, unlike BIND, follows the CNAME itself.
  await world.fake.delegate(bind.zone, world.account);
  await waitForTxt(name, v("delegated"), { resolvers: [world.dns.dnsServer], timeoutMs: 5_000 });
});

Deno.test("issueCertificate() gets an apex plus wildcard certificate from Pebble, which validates DNS-01 through the acme-dns CNAME", async () => {
  await using world = await startWorld();
  const pebble = await startPebble({ dnsServer: world.dns.dnsServer });
  try {
    const client = createAcmeClient({
      directoryUrl: pebble.directoryUrl,
      accountKeyPem: await createPrivateKey("ecdsa"),
      caCertsPem: [pebble.apiCaPem],
    });
    await ensureAccount(client, null, pebble.directoryUrl);
    await world.provider.verify([NAME]);
    const chain = await issueCertificate([`*.${DOMAIN}`, DOMAIN], {
      client,
      directoryUrl: pebble.directoryUrl,
      solver: dnsSolver(
        world.provider,
        // What nexo asks today: _acme-challenge itself, at the DNS server Pebble uses (it follows the CNAME).
        (fqdn, value) => waitForTxt(fqdn, value, { resolvers: [world.dns.dnsServer], intervalMs: 100 }),
      ),
      keyType: "ecdsa",
    });
    assert.deepEqual(parseCertificate(chain.certPem).names.sort(), [`*.${DOMAIN}`, DOMAIN]);
    const blocks = chain.certPem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
    assert.ok(blocks.length >= 2, "leaf and intermediate");
    assert.ok(new X509Certificate(blocks[0]!).verify(new X509Certificate(blocks[1]!).publicKey));
    // Two values, stored at the fulldomain only; nothing was (or could be) deleted.
    assert.equal(valueUpdates(world.fake).length, 2);
    assert.equal(world.fake.txtValues(world.account.subdomain).length, 2);
    assert.deepEqual(
      (await world.dns.txtValues(world.account.fulldomain)).sort(),
      world.fake.txtValues(world.account.subdomain).sort(),
    );
  } finally {
    await pebble.stop();
  }
});

/** Sends one update to BIND with its own nsupdate, signed with the key file. */
async function nsupdate(keyFile: string, port: number, zone: string, line: string): Promise<void> {
  const child = new Deno.Command("nsupdate", {
    args: ["-k", keyFile],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(`server 127.0.0.1 ${port}\nzone ${zone}\n${line}\nsend\n`));
  await writer.close();
  const output = await child.output();
  assert.ok(output.success, new TextDecoder().decode(output.stderr));
}
