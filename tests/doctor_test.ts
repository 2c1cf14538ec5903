// `nexo doctor` against the real pieces: challtestsrv as the DNS server (A/AAAA here and elsewhere, CAA that
// allows and forbids), the fake Cloudflare (valid token, missing scope, wrong zone, an orange-cloud record),
// Pebble (reachable, unreachable, a skewed Date through a small proxy, an account it knows and one it forgot),
// a port held by another process and by a running nexo, a read-only cert_dir, and nexo's shipped permission
// flags. Each problem must come with its fix; a healthy setup must print all ok and exit 0.

import assert from "node:assert/strict";
import { bundledMain } from "./bundle.ts";
import { startChallTestSrv } from "./challtestsrv.ts";
import { startFakeCloudflare } from "./fake_cloudflare.ts";
import { type DoctorRun, runDoctor as doctor, shippedPermissionFlags, startNexo } from "./harness.ts";
import { startPebble } from "./pebble.ts";
import { tryMountTmpfs } from "./tmpfs.ts";
import { closedPort } from "./upstreams.ts";
import { createAcmeClient, ensureAccount } from "../lib/acme/acme_client.ts";
import { createPrivateKey } from "../lib/acme/csr.ts";
import { AcmeAccountStore } from "../lib/storage/acme_accounts.ts";
import { FileStorage } from "../lib/storage/file_storage.ts";
import { isPublicAddress } from "../lib/doctor/addresses.ts";
import type { Finding } from "../lib/doctor/report.ts";

const MAIN = await bundledMain();
const TOKEN = "doctor-test-token-7c1e";

/** The one finding of `area` whose subject starts with `subject`. */
function findingOf(run: DoctorRun, area: string, subject: string): Finding {
  const found = run.findings.filter((f) => f.area === area && f.subject.startsWith(subject));
  assert.equal(
    found.length,
    1,
    `one ${area} finding for ${subject}:\n${JSON.stringify(run.findings, null, 2)}`,
  );
  return found[0]!;
}

/** Asserts `f` is a problem whose message matches `message` and whose fix matches `fix`. */
function assertProblem(f: Finding, message: RegExp, fix: RegExp): void {
  assert.equal(f.status, "problem", JSON.stringify(f));
  assert.match(f.message, message);
  assert.match(f.fix ?? "", fix);
}

Deno.test("nexo doctor names what would fail the first certificate, with the fix, and passes a healthy setup", async (t) => {
  await using dns = await startChallTestSrv();
  await dns.setDefaultIpv4(""); // a name without records has no A record, as in the real world
  const pebble = await startPebble({ dnsServer: dns.dnsServer });
  await using cloudflare = await startFakeCloudflare({
    token: TOKEN,
    zones: ["example.test"],
    challtestsrv: dns,
  });
  const dir = await Deno.makeTempDir({ prefix: "nexo-doctor-" });
  const caFile = `${dir}/pebble-ca.pem`;
  await Deno.writeTextFile(caFile, pebble.apiCaPem);
  const [httpsPort, httpPort] = [closedPort(), closedPort()];
  const base = (extra: { directory?: string; top?: string; routes: string }) =>
    [
      `base_dir: ${dir}/base`,
      `email: ops@example.test`,
      `listen: "127.0.0.1:${httpsPort}"`,
      `http_listen: "127.0.0.1:${httpPort}"`,
      extra.top ?? "",
      `acme:`,
      `  directory: ${extra.directory ?? pebble.directoryUrl}`,
      `  ca_cert: ${caFile}`,
      `  dns_resolvers: ["${dns.dnsServer}"]`,
      `  propagation_timeout: 20s`,
      `proxies:`,
      extra.routes,
    ].join("\n") + "\n";
  const route = (host: string) => `  "${host}":\n    upstream: http://127.0.0.1:9\n`;

  try {
    await t.step("a healthy HTTP-01 setup: everything ok, exit 0, nothing registered", async () => {
      await dns.addAddresses("ok.example.test", "A", ["127.0.0.1"]);
      const run = await doctor(dir, base({ routes: route("ok.example.test") }));
      // Tests cannot listen on port 80 of a public address: the two warnings about that are the only ones.
      const notOk = run.findings.filter((f) => f.status !== "ok" && f.status !== "skipped");
      assert.deepEqual(notOk.map((f) => [f.status, f.subject]), [
        ["warning", `http_listen 127.0.0.1:${httpPort}`],
        ["warning", `http_listen 127.0.0.1:${httpPort}`],
      ], run.stdout);
      assert.match(notOk[0]!.message, /loopback/);
      assert.match(notOk[1]!.fix ?? "", new RegExp(`forward port 80 to ${httpPort}`));
      assert.equal(run.code, 0);
      assert.match(findingOf(run, "dns", "ok.example.test").message, /^points here \(127\.0\.0\.1\)/);
      assert.equal(findingOf(run, "caa", "ok.example.test").status, "ok");
      assert.match(findingOf(run, "ca", "ACME account").message, /none saved yet/);
      assert.match(findingOf(run, "ca", "this machine's clock").message, /within \d+ s/);
      assert.equal(findingOf(run, "machine", "listen 127.0.0.1").status, "ok");
      // It registered nothing and left no probe file behind.
      assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
        "config.yaml",
        "pebble-ca.pem",
      ]);
      // The text report says the same in words.
      const text = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", MAIN, "doctor", "-c", `${dir}/config.yaml`],
        stdout: "piped",
      }).output();
      assert.equal(text.code, 0);
      assert.match(new TextDecoder().decode(text.stdout), /0 problems, 2 warnings, \d+ ok.*Nothing found/);
    });

    await t.step(
      "a config that does not load: its issues are the problems, at their lines, exit 1",
      async () => {
        const run = await doctor(
          dir,
          base({ routes: `  "bad.example.test":\n    upstream: localhost:3000\n` }),
        );
        assert.equal(run.code, 1);
        assert.equal(run.findings.length, 1, run.stdout);
        const [issue] = run.findings;
        assert.equal(issue!.area, "config");
        assert.match(issue!.subject, /config\.yaml:\d+:\d+$/);
        assert.match(issue!.message, /upstream must be an http\(s\) URL/);
      },
    );

    await t.step("hosts pointing elsewhere, nowhere, partly elsewhere or at Cloudflare's proxy", async () => {
      await dns.addAddresses("away.example.test", "A", ["203.0.113.7"]);
      await dns.addAddresses("half.example.test", "A", ["127.0.0.1", "203.0.113.9"]);
      await dns.addAddresses("orange.example.test", "A", ["104.16.0.1"]);
      const hosts = ["away", "none", "half", "orange"].map((h) => `${h}.example.test`);
      const run = await doctor(dir, base({ routes: hosts.map(route).join("") }));
      assert.equal(run.code, 1);
      assertProblem(
        findingOf(run, "dns", "none."),
        /no A or AAAA record/,
        /add an A record for none\.example\.test/,
      );
      const orange = findingOf(run, "dns", "orange.");
      assert.equal(orange.status, "warning");
      assert.match(orange.message, /proxied by Cloudflare.*Always Use HTTPS/);
      assert.match(orange.fix ?? "", /DNS only \(grey cloud\)/);
      // Whether another public IPv4 address is "elsewhere" depends on this machine having one of its own;
      // without, doctor cannot tell (NAT) and says what to forward.
      if (hasPublicIpv4()) {
        assertProblem(
          findingOf(run, "dns", "away."),
          /points to 203\.0\.113\.7: not this machine/,
          /point the A/,
        );
        assertProblem(
          findingOf(run, "dns", "half."),
          /but also to A 203\.0\.113\.9/,
          /remove the record A 203/,
        );
      } else {
        for (const host of ["away.", "half."]) {
          const nat = findingOf(run, "dns", host);
          assert.equal(nat.status, "warning", JSON.stringify(nat));
          assert.match(nat.fix ?? "", /forwards TCP 443 and 80 to this machine/);
        }
      }
    });

    await t.step(
      "CAA up the tree: allowed, another CA only, no wildcards, a parent's, a method, SERVFAIL",
      async () => {
        const hosts = ["caa-ok", "caa-no", "x.wild", "a.climb", "caa-method", "caa-fail"];
        for (const host of hosts) await dns.addAddresses(`${host}.example.test`, "A", ["127.0.0.1"]);
        await dns.addCaa("caa-ok.example.test", [{ tag: "issue", value: "pebble.test" }]);
        await dns.addCaa("caa-no.example.test", [{ tag: "issue", value: "sectigo.com; accounturi=x" }]);
        await dns.addCaa("wild.example.test", [{ tag: "issue", value: "pebble.test" }, {
          tag: "issuewild",
          value: ";",
        }]);
        await dns.addCaa("climb.example.test", [{ tag: "issue", value: "sectigo.com" }]);
        await dns.addCaa("caa-method.example.test", [{
          tag: "issue",
          value: "pebble.test; validationmethods=http-01",
        }]);
        await dns.setServfail("caa-fail.example.test");
        // Pebble's directory names no CAA identity; the proxy adds one (RFC 8555 §7.1.1 meta.caaIdentities).
        await using proxy = directoryProxy(pebble, { caaIdentities: ["pebble.test"] });
        const run = await doctor(
          dir,
          base({
            directory: proxy.url,
            top:
              `wildcards: ["*.wild.example.test"]\ncloudflare:\n  api_token: ${TOKEN}\n  api_base: ${cloudflare.apiBase}`,
            routes: hosts.map((h) => route(`${h}.example.test`)).join(""),
          }),
        );
        assert.match(findingOf(run, "caa", "caa-ok.").message, /allows pebble\.test/);
        assertProblem(
          findingOf(run, "caa", "caa-no."),
          /lets only sectigo\.com issue/,
          /add caa-no\.example\.test\. CAA 0 issue "pebble\.test"/,
        );
        assertProblem(
          findingOf(run, "caa", "*.wild."),
          /lets only no CA issue wildcards \(issuewild\)/,
          /issuewild/,
        );
        assert.equal(
          run.findings.find((f) => f.area === "caa" && f.subject === "wild.example.test")?.status,
          "ok",
        );
        assertProblem(findingOf(run, "caa", "a.climb."), /CAA at climb\.example\.test/, /CAA 0 issue/);
        assertProblem(
          findingOf(run, "caa", "caa-method."),
          /allows only http-01, and nexo validates with dns-01/,
          /CAA/,
        );
        const failed = findingOf(run, "caa", "caa-fail.");
        assert.equal(failed.status, "warning", JSON.stringify(failed));
        assert.match(failed.message, /answered SERVFAIL/);
      },
    );

    await t.step(
      "Cloudflare: a write test seen and deleted, an orange cloud named, a name in no zone",
      async () => {
        await dns.addAddresses("cf.example.test", "A", ["104.16.0.9"]);
        await cloudflare.addRecord("example.test", {
          type: "A",
          name: "cf.example.test",
          content: "104.16.0.9",
          proxied: true,
        });
        const config = base({
          top: `cloudflare:\n  api_token: ${TOKEN}\n  api_base: ${cloudflare.apiBase}`,
          routes: route("cf.example.test") + route("lost.other.test"),
        });
        const run = await doctor(dir, config, { args: ["--write-test"] });
        assert.equal(findingOf(run, "cloudflare", "API token").status, "ok");
        assert.equal(findingOf(run, "cloudflare", "zone example.test").status, "ok");
        const zone = findingOf(run, "cloudflare", "DNS edit in example.test");
        assert.equal(zone.status, "ok", JSON.stringify(zone));
        assert.match(
          zone.message,
          /_acme-challenge\.cf\.example\.test created, seen by the name servers in [\d.]+ s; deleted/,
        );
        assert.deepEqual(cloudflare.records().filter((r) => r.type === "TXT"), []);
        assert.deepEqual(await dns.txtValues("_acme-challenge.cf.example.test"), []);
        assert.match(
          findingOf(run, "cloudflare", "lost.other.test").message,
          /Cannot find the Cloudflare zone/,
        );
        const orange = findingOf(run, "dns", "cf.example.test");
        assert.equal(orange.status, "ok");
        assert.match(orange.message, /proxied by Cloudflare/);
        assert.ok(!run.stdout.includes(TOKEN) && !run.stderr.includes(TOKEN), "the token never printed");

        const untried = await doctor(dir, config);
        assert.equal(findingOf(untried, "cloudflare", "DNS edit in example.test").status, "skipped");
        assert.match(findingOf(untried, "cloudflare", "DNS edit in example.test").message, /--write-test/);

        cloudflare.scopes.delete("dns:edit");
        const readOnly = await doctor(dir, config, { args: ["--write-test"] });
        assert.match(findingOf(readOnly, "cloudflare", "DNS edit in example.test").message, /Zone:DNS:Edit/);
        assert.equal(findingOf(readOnly, "cloudflare", "DNS edit in example.test").status, "problem");
        cloudflare.scopes.add("dns:edit");

        const wrong = await doctor(dir, config.replace(TOKEN, "not-the-token"));
        assert.equal(findingOf(wrong, "cloudflare", "API token").status, "problem");
        assert.equal(wrong.code, 1);
      },
    );

    await t.step(
      "the CA: unreachable, a clock 5 minutes off, an account it knows and one it forgot",
      async () => {
        const unreachable = await doctor(
          dir,
          base({ directory: `https://localhost:${closedPort()}/dir`, routes: route("ok.example.test") }),
        );
        assertProblem(
          findingOf(unreachable, "ca", "https://localhost"),
          /cannot read the directory/,
          /reaches it/,
        );

        // A proxy in front of Pebble whose Date header runs 5 minutes ahead: this machine's clock looks behind.
        await using skewed = directoryProxy(pebble, { dateOffsetMs: 300_000 });
        const run = await doctor(dir, base({ directory: skewed.url, routes: route("ok.example.test") }));
        const clock = findingOf(run, "ca", "this machine's clock");
        assert.equal(clock.status, "warning", JSON.stringify(clock));
        assert.match(clock.message, /^(29\d|30\d) s behind the CA's/);
        assert.match(clock.fix ?? "", /timedatectl set-ntp true/);

        // Accounts registered at Pebble (ECDSA as nexo makes them, and RSA) and saved where nexo keeps them;
        // doctor finds each by its key. Then Pebble forgets every account.
        for (const type of ["rsa", "ecdsa"] as const) {
          const keyPem = await createPrivateKey(type);
          const acme = createAcmeClient({
            directoryUrl: pebble.directoryUrl,
            accountKeyPem: keyPem,
            caCertsPem: [pebble.apiCaPem],
          });
          const url = await ensureAccount(acme, "ops@example.test", pebble.directoryUrl);
          await new AcmeAccountStore(new FileStorage(`${dir}/base`)).saveAccount(pebble.directoryUrl, {
            keyPem,
            url,
            email: "ops@example.test",
          });
          const known = await doctor(dir, base({ routes: route("ok.example.test") }));
          assert.equal(findingOf(known, "ca", "ACME account").message, `known to the CA (${url})`, type);
        }
        await pebble.restart();
        const forgotten = await doctor(dir, base({ routes: route("ok.example.test") }));
        assert.match(
          findingOf(forgotten, "ca", "ACME account").message,
          /unknown to the CA.*registers a new one/,
        );
      },
    );

    await t.step(
      "a port held by another program is a problem naming it; held by nexo itself, fine",
      async () => {
        const holder = new Deno.Command(Deno.execPath(), {
          args: [
            "eval",
            `Deno.listen({ hostname: "127.0.0.1", port: ${httpsPort} }); setTimeout(() => {}, 60_000);`,
          ],
          stdout: "null",
          stderr: "null",
        }).spawn();
        try {
          const config = base({ routes: route("ok.example.test") });
          // The holder binds a moment after it starts: ask until doctor sees the port taken (10 s at most).
          let run = await doctor(dir, config);
          for (let i = 0; i < 50 && /bind it/.test(findingOf(run, "machine", "listen ").message); i++) {
            await new Promise((resolve) => setTimeout(resolve, 200));
            run = await doctor(dir, config);
          }
          assertProblem(
            findingOf(run, "machine", "listen "),
            new RegExp(`another program holds port ${httpsPort}: deno \\(pid ${holder.pid}\\)`),
            new RegExp(`systemctl status ${holder.pid}`),
          );
          // Under the shipped flags /proc is closed: the holder cannot be named, and doctor says so.
          const narrow = await doctor(dir, config, { flags: await shippedPermissionFlags(dir) });
          const listen = findingOf(narrow, "machine", "listen ");
          assert.equal(listen.status, "warning");
          assert.match(listen.fix ?? "", new RegExp(`ss -ltnp 'sport = :${httpsPort}'`));
          for (const subject of ["open files limit", "tcp_migrate_req"]) {
            const skipped = narrow.findings.find((f) => f.subject.includes(subject));
            if (skipped === undefined) continue; // no such sysctl on this kernel
            assert.equal(skipped.status, "skipped");
            assert.match(skipped.message, /only with --allow-all/);
          }
        } finally {
          holder.kill();
          await holder.status;
        }
        const nexo = await startNexo(route("ok.example.test").replace(/^/, "proxies:\n"), {
          args: [],
          dir: await Deno.makeTempDir({ prefix: "nexo-doctor-run-" }),
        });
        try {
          const config = base({ routes: route("ok.example.test") }).replace(
            `listen: "127.0.0.1:${httpsPort}"`,
            `listen: "127.0.0.1:${nexo.port}"`,
          );
          const run = await doctor(dir, config);
          const listen = findingOf(run, "machine", "listen ");
          assert.equal(listen.status, "ok", JSON.stringify(listen));
          assert.match(listen.message, new RegExp(`held by nexo itself \\(pid ${nexo.pid}\\)`));
        } finally {
          await nexo.stop();
          await Deno.remove(nexo.dir, { recursive: true });
        }
      },
    );

    await t.step({
      name: "a read-only cert_dir is a problem; so is one outside the folder the shipped flags may write",
      ignore: Deno.uid() !== 0,
      fn: async () => {
        const readOnly = await Deno.makeTempDir({ prefix: "nexo-doctor-ro-" });
        assert.ok(await tryMountTmpfs(readOnly, "ro,size=64k"), "mount a read-only tmpfs");
        try {
          const run = await doctor(
            dir,
            base({ routes: route("ok.example.test") }).replace(
              `base_dir: ${dir}/base`,
              `base_dir: ${dir}/base\ncert_dir: ${readOnly}/certs`,
            ),
          );
          assertProblem(
            findingOf(run, "machine", "cert_dir"),
            /cannot write .*[Rr]ead-only/,
            /read-only mount/,
          );
          assert.equal(run.code, 1);
        } finally {
          await new Deno.Command("umount", { args: [readOnly] }).output();
          await Deno.remove(readOnly, { recursive: true });
        }
        const outside = await Deno.makeTempDir({ prefix: "nexo-doctor-outside-" });
        try {
          const run = await doctor(
            dir,
            base({ routes: route("ok.example.test") }).replace(
              `base_dir: ${dir}/base`,
              `base_dir: ${dir}/base\ncert_dir: ${outside}/certs`,
            ),
            { flags: await shippedPermissionFlags(dir) },
          );
          assertProblem(
            findingOf(run, "machine", "cert_dir"),
            /permissions do not let it write/,
            /\/etc\/nexo/,
          );
        } finally {
          await Deno.remove(outside, { recursive: true });
        }
      },
    });
  } finally {
    await pebble.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

/** Whether this machine has a public IPv4 address (else doctor reports other addresses as NAT). */
function hasPublicIpv4(): boolean {
  return Deno.networkInterfaces().some((i) => i.family === "IPv4" && isPublicAddress(i.address));
}

/**
 * A plain-HTTP proxy in front of Pebble's directory: its Date header moved by `dateOffsetMs`, and
 * `meta.caaIdentities` added (Pebble sends none). The directory's other URLs still point at Pebble.
 */
function directoryProxy(
  pebble: { directoryUrl: string; apiCaPem: string },
  options: { dateOffsetMs?: number; caaIdentities?: string[] },
): { url: string; [Symbol.asyncDispose](): Promise<void> } {
  const client = Deno.createHttpClient({ caCerts: [pebble.apiCaPem] });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async () => {
    const upstream = await fetch(pebble.directoryUrl, { client });
    const directory = await upstream.json();
    if (options.caaIdentities) directory.meta = { ...directory.meta, caaIdentities: options.caaIdentities };
    const headers = new Headers({ "content-type": "application/json" });
    headers.set("date", new Date(Date.now() + (options.dateOffsetMs ?? 0)).toUTCString());
    return new Response(JSON.stringify(directory), { status: upstream.status, headers });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/dir`,
    async [Symbol.asyncDispose]() {
      await server.shutdown();
      client.close();
    },
  };
}
