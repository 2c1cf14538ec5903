// ACME Renewal Information (RFC 9773) end to end: nexo against a real Pebble issuing 40-second certificates,
// through tests/fake_ari.ts (Debian's Pebble 2.4 has no ARI), checking every second (check_interval: 1s,
// Retry-After: 1). A window far in the future holds the renewal past the time the fixed schedule would have
// renewed; a window moved into the past renews at once with `replaces` naming the old certificate; a failing
// renewalInfo (500, then garbage) leaves the fixed schedule in charge, warned once per kind of failure, and a
// CA refusing `replaces` gets the order again without it.

import assert from "node:assert/strict";
import { renewalDueAt } from "../lib/acme/schedule.ts";
import { parseCertificate } from "../lib/tls/pem.ts";
import { startChallTestSrv } from "./challtestsrv.ts";
import { startFakeAri } from "./fake_ari.ts";
import { startNexo } from "./harness.ts";
import { startPebble } from "./pebble.ts";
import { closedPort, startEchoUpstream } from "./upstreams.ts";

const HOST = "app.example.com";
const VALIDITY_S = 40;

Deno.test("nexo renews inside the CA's renewal window, names the certificate it replaces, and falls back to its fixed schedule", async (t) => {
  await using dns = await startChallTestSrv();
  const httpPort = closedPort();
  const pebble = await startPebble({ dnsServer: dns.dnsServer, httpPort, validitySeconds: VALIDITY_S });
  const ari = await startFakeAri(pebble).catch(async (error) => {
    await pebble.stop();
    throw error;
  });
  const app = startEchoUpstream();
  const caFile = await Deno.makeTempFile({ prefix: "nexo-ari-ca-", suffix: ".pem" });
  await Deno.writeTextFile(caFile, ari.caPem);
  try {
    const nexo = await startNexo(`
issuer: acme
http_listen: "127.0.0.1:${httpPort}"
acme:
  directory: ${ari.directoryUrl}
  ca_cert: ${caFile}
  retry_interval: 1s
  check_interval: 1s
proxies:
  "${HOST}":
    upstream: ${app.url}
`);
    const count = (msg: string) => nexo.logs.filter((l) => l.msg === msg).length;
    const waitForCount = async (msg: string, n: number, timeoutMs: number) => {
      await nexo.waitForLog(() => count(msg) >= n, timeoutMs);
    };
    const stored = async () => {
      const pem = await Deno.readTextFile(`${nexo.dir}/certs/${HOST}/fullchain.pem`);
      return { pem, ...parseCertificate(pem) };
    };
    try {
      await t.step("a window far in the future holds renewal past the fixed schedule's time", async () => {
        await waitForCount("certificate installed", 1, 60_000);
        const window = await nexo.waitForLog((l) => l.msg === "renewal window from CA", 10_000);
        assert.equal(window.level, "warn", "a window past the certificate's life is capped, and says so");
        assert.match(String(window.note), /window ends too late/);
        const first = await stored();
        const fixedDue = renewalDueAt(first, 720 * 3_600_000);
        // Three seconds past the fixed schedule's time, with the CA asked every second: no new order.
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, fixedDue + 3_000 - Date.now())));
        assert.equal(count("certificate order started"), 1, nexo.output());
        assert.equal(ari.issued().length, 1);
        const asked = ari.renewalInfoRequests().filter((id) => id === ari.issued()[0]).length;
        assert.ok(asked >= 3, `the CA was asked again as Retry-After says (${asked} requests)`);
        assert.deepEqual(
          ari.newOrders().map((order) => order.replaces),
          [undefined],
          "a first order replaces nothing",
        );
      });

      await t.step(
        "a window moved into the past renews at once, and the order names the certificate it replaces",
        async () => {
          const [firstId] = ari.issued();
          const movedAt = Date.now();
          ari.answer({
            kind: "window",
            start: new Date(movedAt - 3_600_000),
            end: new Date(movedAt - 60_000),
            explanationUrl: "https://ca.example/incident",
          });
          const due = await nexo.waitForLog((l) => l.msg === "certificate renewal due", 10_000);
          assert.equal(due.source, "ca_window");
          assert.equal(due.replaces, firstId);
          await waitForCount("certificate installed", 2, 20_000);
          assert.ok(Date.now() - movedAt < 15_000, `renewed promptly (${Date.now() - movedAt} ms)`);
          const orders = ari.newOrders();
          assert.equal(orders.length, 2);
          assert.equal(orders[1]?.replaces, firstId, "newOrder's replaces is the old certificate's ID");
          assert.equal(ari.issued().length, 2);
          assert.ok(
            nexo.logs.some((l) =>
              l.msg === "renewal window from CA" && l.explanation_url === "https://ca.example/incident"
            ),
            "the CA's explanation URL reaches the operator",
          );
        },
      );

      await t.step(
        "with renewalInfo failing (500, then garbage) the fixed schedule renews; a refused replaces is dropped once",
        async () => {
          const secondId = ari.issued()[1]!;
          const warnings = () =>
            nexo.logs.filter((l) => l.msg === "renewal information unavailable" && l.names === HOST);
          const before = warnings().length;
          ari.refuseReplacesOnce();
          ari.answer({ kind: "status", status: 500 });
          const outage = await nexo.waitForLog(
            (l) => l.msg === "renewal information unavailable" && /HTTP 500/.test(String(l.error)),
            10_000,
          );
          assert.equal(outage.level, "warn");
          assert.equal(outage.fallback, "fixed schedule");
          await new Promise((resolve) => setTimeout(resolve, 3_000));
          ari.answer({ kind: "garbage" });
          await nexo.waitForLog(
            (l) => l.msg === "renewal information unavailable" && /not JSON/.test(String(l.error)),
            10_000,
          );
          const second = await stored();
          const fixedDue = renewalDueAt(second, 720 * 3_600_000);
          await waitForCount("certificate installed", 3, fixedDue - Date.now() + 15_000);
          const due = nexo.logs.filter((l) => l.msg === "certificate renewal due").at(-1)!;
          assert.equal(due.source, "fixed");
          assert.ok(
            Date.parse(String(due.renews_at)) === fixedDue,
            `${due.renews_at} is the fixed schedule's time`,
          );
          // Polled every second or so, but warned once per kind of failure, not once per poll.
          const polls = ari.renewalInfoRequests().filter((id) => id === secondId).length;
          assert.ok(polls >= 5, `${polls} requests`);
          assert.equal(warnings().length - before, 2, JSON.stringify(warnings()));
          // The CA refused `replaces` (409 alreadyReplaced): the same order went again without it.
          const orders = ari.newOrders().slice(2);
          assert.deepEqual(orders.map((o) => [o.replaces, o.refused]), [[secondId, true], [
            undefined,
            false,
          ]]);
          const retried = nexo.logs.find((l) => l.msg === "order retried without replaces");
          assert.equal(retried?.replaces, secondId);
          assert.match(String(retried?.reason), /alreadyReplaced/);
        },
      );
    } finally {
      await nexo.stop();
    }
  } finally {
    await ari.close();
    await pebble.stop();
    await app.close();
    await Deno.remove(caFile);
  }
});
