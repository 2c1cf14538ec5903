// The DnsProvider conformance suite: the contract in provider.ts as tests, registered with Deno.test by every
// provider's test file (cloudflare_test.ts against the fake API, tests/dns01_test.ts end to end through DNS,
// tests/rfc2136_test.ts, tests/acme_dns_test.ts). It holds no provider-specific knowledge: each caller supplies
// a fixture that builds a provider and observes the records it publishes, and each clause tests what the
// provider's declared capabilities promise (the whole contract when it declares none).

import assert from "node:assert/strict";
import { type DnsProvider, providerCapabilities, type TxtRecordHandle } from "./provider.ts";

/** What one conformance test needs; `setup` builds a fresh one per test. */
export interface ConformanceFixture {
  provider: DnsProvider;
  /** Apex of a zone the provider manages, e.g. "example.com"; tests use names below it. */
  zone: string;
  /**
   * The only `_acme-challenge` names the provider can publish at, for one that serves fixed names rather than
   * whole zones (acme-dns: exactly one); clauses then use these, and skip what needs more names than given.
   * Absent: the provider serves any name below `zone`, and the suite picks several of its own.
   */
  names?: readonly string[];
  /** The TXT values now published at `fqdn` (through the provider's backend or DNS), in any order. */
  txtValues(fqdn: string): Promise<string[]>;
  /** Publishes a TXT record behind the provider's back, as a crashed run would have left it. */
  addStaleRecord(fqdn: string, value: string): Promise<void>;
  /** Stops whatever `setup` started. */
  close(): Promise<void>;
}

/**
 * A TXT value shaped like a real DNS-01 one: 43 characters of base64url (a SHA-256 digest, RFC 8555 §8.4),
 * here `label` padded with "_", so failures stay readable. Some APIs (acme-dns) refuse any other shape.
 */
export function conformanceValue(label: string): string {
  return label.padEnd(43, "_");
}

/** The fixture's `index`th fixed name, or `fallback` when the provider serves any name; null when it has none. */
function pickName(fixture: ConformanceFixture, fallback: string, index = 0): string | null {
  if (fixture.names === undefined) return fallback;
  return fixture.names[index] ?? null;
}

/**
 * Registers one Deno.test per contract clause, named "<label> <behaviour> (DnsProvider contract)". Call it
 * at the top level of a test module.
 */
export function testDnsProviderConformance(label: string, setup: () => Promise<ConformanceFixture>): void {
  const test = (behaviour: string, body: (fixture: ConformanceFixture) => Promise<void>) =>
    Deno.test(`${label} ${behaviour} (DnsProvider contract)`, async () => {
      const fixture = await setup();
      try {
        await body(fixture);
      } finally {
        await fixture.close();
      }
    });

  const v = conformanceValue;
  /** The name a clause works on: the suite's own, or the provider's first fixed name. */
  const first = (fixture: ConformanceFixture, fallback: string) => pickName(fixture, fallback)!;
  /** After deletes: nothing for a provider that deletes, else everything that was there. */
  const afterDelete = (fixture: ConformanceFixture, before: string[]) =>
    providerCapabilities(fixture.provider).deletes ? [] : before;

  test("verify() accepts working credentials", async (fixture) => {
    const { provider, zone } = fixture;
    await provider.verify();
    await provider.verify([first(fixture, `_acme-challenge.${zone}`)]);
  });

  test("findZone() returns the apex of the zone holding a name", async (fixture) => {
    const { provider, zone } = fixture;
    if (fixture.names === undefined) {
      assert.equal(await provider.findZone(`_acme-challenge.deep.sub.${zone}`), zone);
    } else {
      for (const name of fixture.names) assert.equal(await provider.findZone(name.toUpperCase() + "."), zone);
      await assert.rejects(
        provider.findZone(`_acme-challenge.not-served.${zone}`),
        (error: Error & { kind?: string }) => error.kind === "zone_not_found",
      );
    }
    assert.equal(await provider.findZone(zone.toUpperCase() + "."), zone);
  });

  test("createTxtRecord() publishes the value and returns a normalized, JSON-safe handle", async (fixture) => {
    const { provider, zone } = fixture;
    const fqdn = first(fixture, `_acme-challenge.www.${zone}`);
    const given = fixture.names === undefined
      ? `_ACME-Challenge.WWW.${zone.toUpperCase()}.`
      : `${fqdn.toUpperCase()}.`;
    const handle = await provider.createTxtRecord(given, v("value-1"));
    assert.equal(handle.provider, provider.name);
    assert.equal(handle.fqdn, fqdn);
    assert.equal(handle.value, v("value-1"));
    assert.equal(handle.zone, zone);
    assert.deepEqual(await fixture.txtValues(fqdn), [v("value-1")]);
    const revived: TxtRecordHandle = JSON.parse(JSON.stringify(handle));
    await provider.deleteTxtRecord(revived);
    assert.deepEqual(await fixture.txtValues(fqdn), afterDelete(fixture, [v("value-1")]));
  });

  test("keeps two values on one name and deleting one leaves the other", async (fixture) => {
    const { provider, zone } = fixture;
    const fqdn = first(fixture, `_acme-challenge.${zone}`);
    const apex = await provider.createTxtRecord(fqdn, v("apex-value"));
    const wildcard = await provider.createTxtRecord(fqdn, v("wildcard-value"));
    const both = [v("apex-value"), v("wildcard-value")];
    assert.deepEqual((await fixture.txtValues(fqdn)).sort(), both);
    await provider.deleteTxtRecord(apex);
    assert.deepEqual(
      (await fixture.txtValues(fqdn)).sort(),
      providerCapabilities(provider).deletes ? [v("wildcard-value")] : both,
    );
    await provider.deleteTxtRecord(wildcard);
    assert.deepEqual((await fixture.txtValues(fqdn)).sort(), afterDelete(fixture, both));
  });

  test("deleteTxtRecord() of an already deleted record succeeds", async (fixture) => {
    const { provider, zone } = fixture;
    const fqdn = first(fixture, `_acme-challenge.${zone}`);
    const handle = await provider.createTxtRecord(fqdn, v("once"));
    await provider.deleteTxtRecord(handle);
    await provider.deleteTxtRecord(handle);
    assert.deepEqual(await fixture.txtValues(fqdn), afterDelete(fixture, [v("once")]));
  });

  test("createTxtRecord() of a value already published succeeds with a handle to it", async (fixture) => {
    const { provider, zone } = fixture;
    const fqdn = first(fixture, `_acme-challenge.retry.${zone}`);
    const original = await provider.createTxtRecord(fqdn, v("same"));
    const second = await provider.createTxtRecord(fqdn, v("same"));
    assert.deepEqual(second, original);
    assert.deepEqual(await fixture.txtValues(fqdn), [v("same")]);
    await provider.deleteTxtRecord(second);
    assert.deepEqual(await fixture.txtValues(fqdn), afterDelete(fixture, [v("same")]));
  });

  test("cleanupStale() removes every TXT record at the name, counts them and spares other names", async (fixture) => {
    const { provider, zone } = fixture;
    const fqdn = first(fixture, `_acme-challenge.${zone}`);
    const other = pickName(fixture, `_acme-challenge.other.${zone}`, 1);
    await fixture.addStaleRecord(fqdn, v("left-1"));
    await fixture.addStaleRecord(fqdn, v("left-2"));
    if (other !== null) await fixture.addStaleRecord(other, v("keep"));
    if (!providerCapabilities(provider).deletes) {
      // Nothing can be removed, and the count says so.
      assert.equal(await provider.cleanupStale(fqdn), 0);
      assert.deepEqual((await fixture.txtValues(fqdn)).sort(), [v("left-1"), v("left-2")]);
      if (other !== null) assert.deepEqual(await fixture.txtValues(other), [v("keep")]);
      return;
    }
    assert.equal(await provider.cleanupStale(fqdn), 2);
    assert.deepEqual(await fixture.txtValues(fqdn), []);
    if (other === null) return;
    assert.deepEqual(await fixture.txtValues(other), [v("keep")]);
    assert.equal(await provider.cleanupStale(fqdn), 0);
    assert.equal(await provider.cleanupStale(other), 1);
  });

  test("cleanupStale() refuses a name that is not an _acme-challenge name", async ({ provider, zone }) => {
    await assert.rejects(provider.cleanupStale(`www.${zone}`), TypeError);
  });

  test("deleteTxtRecord() refuses a handle another provider created", async (fixture) => {
    const { provider, zone } = fixture;
    const foreign: TxtRecordHandle = {
      provider: `not-${provider.name}`,
      fqdn: first(fixture, `_acme-challenge.${zone}`),
      value: "x",
      zone,
      ref: {},
    };
    await assert.rejects(provider.deleteTxtRecord(foreign), TypeError);
  });

  test("allows overlapping calls on one name and on several names", async (fixture) => {
    const { provider, zone } = fixture;
    const names = fixture.names ??
      [`_acme-challenge.${zone}`, `_acme-challenge.a.${zone}`, `_acme-challenge.b.${zone}`];
    const handles = await Promise.all(
      names.flatMap((
        fqdn,
      ) => [provider.createTxtRecord(fqdn, v("one")), provider.createTxtRecord(fqdn, v("two"))]),
    );
    for (const fqdn of names) assert.deepEqual((await fixture.txtValues(fqdn)).sort(), [v("one"), v("two")]);
    await Promise.all(handles.map((handle) => provider.deleteTxtRecord(handle)));
    for (const fqdn of names) {
      assert.deepEqual((await fixture.txtValues(fqdn)).sort(), afterDelete(fixture, [v("one"), v("two")]));
    }
  });

  test("keeps the newest values up to its limit on a name, and re-creating the newest pushes none out", async (fixture) => {
    const { provider, zone } = fixture;
    const fqdn = first(fixture, `_acme-challenge.roll.${zone}`);
    const max = providerCapabilities(provider).maxValuesPerName;
    // One value more than the limit; without a limit, three values must coexist.
    const values = Array.from({ length: (max ?? 2) + 1 }, (_, i) => v(`roll-${i + 1}`));
    const handles: TxtRecordHandle[] = [];
    for (const value of values) handles.push(await provider.createTxtRecord(fqdn, value));
    const kept = (max === null ? values : values.slice(-max)).sort();
    assert.deepEqual((await fixture.txtValues(fqdn)).sort(), kept);
    assert.deepEqual(await provider.createTxtRecord(fqdn, values.at(-1)!), handles.at(-1));
    assert.deepEqual((await fixture.txtValues(fqdn)).sort(), kept);
    for (const handle of handles) await provider.deleteTxtRecord(handle);
    assert.deepEqual((await fixture.txtValues(fqdn)).sort(), afterDelete(fixture, kept));
  });
}
