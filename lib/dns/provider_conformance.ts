// The DnsProvider conformance suite: the contract in provider.ts as tests, registered with Deno.test by every
// provider's test file (cloudflare_test.ts against the fake API, tests/dns01_test.ts end to end through DNS).
// It holds no provider-specific knowledge; each caller supplies a fixture that builds a provider and observes
// the records it publishes.

import assert from "node:assert/strict";
import type { DnsProvider, TxtRecordHandle } from "./provider.ts";

/** What one conformance test needs; `setup` builds a fresh one per test. */
export interface ConformanceFixture {
  provider: DnsProvider;
  /** Apex of a zone the provider manages, e.g. "example.com"; tests use names below it. */
  zone: string;
  /** The TXT values now published at `fqdn` (through the provider's backend or DNS), in any order. */
  txtValues(fqdn: string): Promise<string[]>;
  /** Publishes a TXT record behind the provider's back, as a crashed run would have left it. */
  addStaleRecord(fqdn: string, value: string): Promise<void>;
  /** Stops whatever `setup` started. */
  close(): Promise<void>;
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

  test("verify() accepts working credentials", async ({ provider, zone }) => {
    await provider.verify();
    await provider.verify([`_acme-challenge.${zone}`]);
  });

  test("findZone() returns the apex of the zone holding a name", async ({ provider, zone }) => {
    assert.equal(await provider.findZone(`_acme-challenge.deep.sub.${zone}`), zone);
    assert.equal(await provider.findZone(zone.toUpperCase() + "."), zone);
  });

  test("createTxtRecord() publishes the value and returns a normalized, JSON-safe handle", async (fixture) => {
    const { provider, zone } = fixture;
    const fqdn = `_acme-challenge.www.${zone}`;
    const handle = await provider.createTxtRecord(`_ACME-Challenge.WWW.${zone.toUpperCase()}.`, "value-1");
    assert.equal(handle.provider, provider.name);
    assert.equal(handle.fqdn, fqdn);
    assert.equal(handle.value, "value-1");
    assert.equal(handle.zone, zone);
    assert.deepEqual(await fixture.txtValues(fqdn), ["value-1"]);
    const revived: TxtRecordHandle = JSON.parse(JSON.stringify(handle));
    await provider.deleteTxtRecord(revived);
    assert.deepEqual(await fixture.txtValues(fqdn), []);
  });

  test("keeps two values on one name and deleting one leaves the other", async (fixture) => {
    const { provider, zone } = fixture;
    const fqdn = `_acme-challenge.${zone}`;
    const apex = await provider.createTxtRecord(fqdn, "apex-value");
    const wildcard = await provider.createTxtRecord(fqdn, "wildcard-value");
    assert.deepEqual((await fixture.txtValues(fqdn)).sort(), ["apex-value", "wildcard-value"]);
    await provider.deleteTxtRecord(apex);
    assert.deepEqual(await fixture.txtValues(fqdn), ["wildcard-value"]);
    await provider.deleteTxtRecord(wildcard);
    assert.deepEqual(await fixture.txtValues(fqdn), []);
  });

  test("deleteTxtRecord() of an already deleted record succeeds", async (fixture) => {
    const { provider, zone } = fixture;
    const handle = await provider.createTxtRecord(`_acme-challenge.${zone}`, "once");
    await provider.deleteTxtRecord(handle);
    await provider.deleteTxtRecord(handle);
    assert.deepEqual(await fixture.txtValues(`_acme-challenge.${zone}`), []);
  });

  test("createTxtRecord() of a value already published succeeds with a handle to it", async (fixture) => {
    const { provider, zone } = fixture;
    const fqdn = `_acme-challenge.retry.${zone}`;
    const first = await provider.createTxtRecord(fqdn, "same");
    const second = await provider.createTxtRecord(fqdn, "same");
    assert.deepEqual(second, first);
    assert.deepEqual(await fixture.txtValues(fqdn), ["same"]);
    await provider.deleteTxtRecord(second);
    assert.deepEqual(await fixture.txtValues(fqdn), []);
  });

  test("cleanupStale() removes every TXT record at the name, counts them and spares other names", async (fixture) => {
    const { provider, zone } = fixture;
    const fqdn = `_acme-challenge.${zone}`;
    const other = `_acme-challenge.other.${zone}`;
    await fixture.addStaleRecord(fqdn, "left-1");
    await fixture.addStaleRecord(fqdn, "left-2");
    await fixture.addStaleRecord(other, "keep");
    assert.equal(await provider.cleanupStale(fqdn), 2);
    assert.deepEqual(await fixture.txtValues(fqdn), []);
    assert.deepEqual(await fixture.txtValues(other), ["keep"]);
    assert.equal(await provider.cleanupStale(fqdn), 0);
    assert.equal(await provider.cleanupStale(other), 1);
  });

  test("cleanupStale() refuses a name that is not an _acme-challenge name", async ({ provider, zone }) => {
    await assert.rejects(provider.cleanupStale(`www.${zone}`), TypeError);
  });

  test("deleteTxtRecord() refuses a handle another provider created", async ({ provider, zone }) => {
    const foreign: TxtRecordHandle = {
      provider: `not-${provider.name}`,
      fqdn: `_acme-challenge.${zone}`,
      value: "x",
      zone,
      ref: {},
    };
    await assert.rejects(provider.deleteTxtRecord(foreign), TypeError);
  });

  test("allows overlapping calls on one name and on several names", async (fixture) => {
    const { provider, zone } = fixture;
    const names = [`_acme-challenge.${zone}`, `_acme-challenge.a.${zone}`, `_acme-challenge.b.${zone}`];
    const handles = await Promise.all(
      names.flatMap((fqdn) => [provider.createTxtRecord(fqdn, "one"), provider.createTxtRecord(fqdn, "two")]),
    );
    for (const fqdn of names) assert.deepEqual((await fixture.txtValues(fqdn)).sort(), ["one", "two"]);
    await Promise.all(handles.map((handle) => provider.deleteTxtRecord(handle)));
    for (const fqdn of names) assert.deepEqual(await fixture.txtValues(fqdn), []);
  });
}
