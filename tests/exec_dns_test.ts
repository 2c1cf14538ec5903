// The exec DNS provider with a real hook: a shell script speaking lego's exec protocol that edits a real
// BIND 9 through nsupdate, as a user's hook would. The DnsProvider conformance suite, a hook that fails (its
// stderr in the error), one that hangs (killed at the timeout, also when a child it left holds stderr), and
// nexo obtaining a wildcard certificate through the hook under the compiled binary's permission flags, which
// Pebble validates against that BIND.

import assert from "node:assert/strict";
import { testDnsProviderConformance } from "../lib/dns/provider_conformance.ts";
import { DnsProviderError } from "../lib/dns/provider.ts";
import { ExecDnsProvider } from "../lib/dns/exec.ts";
import { lookupTxt } from "../lib/dns/lookups.ts";
import { type Bind, nsupdateAdd, startBind } from "./bind.ts";
import { shippedPermissionFlags, startNexo } from "./harness.ts";
import { startPebble } from "./pebble.ts";
import { startEchoUpstream } from "./upstreams.ts";

/**
 * A hook as a user writes one: its fixed arguments are BIND's port, the key file and a log; then lego's
 * `present|cleanup FQDN. VALUE`.
 */
const NSUPDATE_HOOK = `#!/bin/sh
set -eu
port=$1 key=$2 log=$3 action=$4 name=$5 value=$6
case "$action" in
  present) op="add $name 60 TXT \\"$value\\"" ;;
  cleanup) op="delete $name TXT \\"$value\\"" ;;
  *) echo "unknown action: $action" >&2; exit 2 ;;
esac
printf 'server 127.0.0.1 %s\\nupdate %s\\nsend\\n' "$port" "$op" | nsupdate -k "$key"
echo "$action $name $value" >> "$log"
`;

async function writeHook(dir: string, body: string, name = "dns-hook"): Promise<string> {
  const path = `${dir}/${name}`;
  await Deno.writeTextFile(path, body, { mode: 0o755 });
  return path;
}

async function hookFor(bind: Bind): Promise<{ command: string[]; log: string; dir: string }> {
  const dir = await Deno.makeTempDir({ prefix: "nexo-exec-" });
  const hook = await writeHook(dir, NSUPDATE_HOOK);
  const log = `${dir}/hook.log`;
  return { command: [hook, String(bind.port), bind.keyFile, log], log, dir };
}

testDnsProviderConformance("ExecDnsProvider (a hook running nsupdate against BIND 9)", async () => {
  const bind = await startBind();
  const { command, dir } = await hookFor(bind);
  return {
    provider: new ExecDnsProvider({
      command,
      timeoutMs: 10_000,
      zone: bind.zone,
      lookupTxt: (fqdn) => lookupTxt(fqdn, [bind.dnsServer]),
    }),
    zone: bind.zone,
    txtValues: (fqdn) => bind.txtValues(fqdn),
    addStaleRecord: (fqdn, value) => nsupdateAdd(bind, fqdn, value),
    close: async () => {
      await bind.stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
});

Deno.test("the exec provider calls the hook as lego does and runs one call at a time", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nexo-exec-" });
  try {
    // Records its arguments, and fails when another run is in progress (a lock file it holds for 100 ms).
    const hook = await writeHook(
      dir,
      `#!/bin/sh\nset -eu\nmkdir "${dir}/lock" || { echo "overlapping run" >&2; exit 9; }\n` +
        `echo "$@" >> "${dir}/calls"\nsleep 0.1\nrmdir "${dir}/lock"\n`,
    );
    const provider = new ExecDnsProvider({
      command: [hook, "--fixed"],
      timeoutMs: 5_000,
      zone: "example.org",
    });
    const handles = await Promise.all([
      provider.createTxtRecord("_acme-challenge.Example.org", "v1"),
      provider.createTxtRecord("_acme-challenge.www.example.org.", "v2"),
    ]);
    await Promise.all(handles.map((handle) => provider.deleteTxtRecord(handle)));
    assert.deepEqual((await Deno.readTextFile(`${dir}/calls`)).trim().split("\n"), [
      "--fixed present _acme-challenge.example.org. v1",
      "--fixed present _acme-challenge.www.example.org. v2",
      "--fixed cleanup _acme-challenge.example.org. v1",
      "--fixed cleanup _acme-challenge.www.example.org. v2",
    ]);
    await assert.rejects(
      provider.findZone("_acme-challenge.example.net"),
      (e) =>
        e instanceof DnsProviderError && e.kind === "zone_not_found" &&
        /outside the zone example\.org/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a failing hook's exit code and stderr are in the error; a hung one is killed at the timeout", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nexo-exec-" });
  try {
    const failing = await writeHook(
      dir,
      `#!/bin/sh\necho "zone example.org: REFUSED" >&2\nexit 3\n`,
      "fails",
    );
    const error = await new ExecDnsProvider({ command: [failing], timeoutMs: 5_000, zone: null })
      .createTxtRecord("_acme-challenge.example.org", "value")
      .then(() => null, (e) => e);
    assert.ok(error instanceof DnsProviderError, String(error));
    assert.equal(error.kind, "rejected");
    assert.match(
      error.message,
      /present _acme-challenge\.example\.org\. value" exited with 3: zone example\.org: REFUSED/,
    );

    // A hook that hangs, and one that exits but leaves a child holding its stderr open: neither holds nexo.
    for (const body of [`#!/bin/sh\necho working >&2\nsleep 30\n`, `#!/bin/sh\nsleep 30 >&2 &\nexit 4\n`]) {
      const hook = await writeHook(dir, body, "slow");
      const started = Date.now();
      const slow = await new ExecDnsProvider({ command: [hook], timeoutMs: 500, zone: "example.org" })
        .createTxtRecord("_acme-challenge.example.org", "value")
        .then(() => null, (e) => e);
      assert.ok(slow instanceof DnsProviderError, String(slow));
      assert.match(
        slow.message,
        /did not finish within 500 ms and was killed; its stderr ended: working|exited with 4/,
      );
      assert.ok(Date.now() - started < 5_000, `returned after ${Date.now() - started} ms`);
    }
    const missing = await new ExecDnsProvider({ command: [`${dir}/absent`], timeoutMs: 500, zone: null })
      .createTxtRecord("_acme-challenge.example.org", "value")
      .then(() => null, (e) => e);
    assert.match(String(missing), /Cannot run the DNS hook .*absent: it does not exist/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("nexo obtains a wildcard certificate through an exec hook under the shipped permissions, and cleans up", async () => {
  await using bind = await startBind();
  const pebble = await startPebble({ dnsServer: bind.dnsServer });
  const app = startEchoUpstream();
  const dir = await Deno.makeTempDir({ prefix: "nexo-exec-e2e-" });
  try {
    // The compiled binary may run exactly /etc/nexo/dns-hook; here <dir> stands for /etc/nexo.
    const hook = await writeHook(dir, NSUPDATE_HOOK);
    await Deno.writeTextFile(`${dir}/ca.pem`, pebble.apiCaPem);
    const flags = await shippedPermissionFlags(dir);
    assert.ok(flags.includes(`--allow-run=${dir}/dns-hook`), flags.join(" "));
    const nexo = await startNexo(
      [
        "issuer: acme",
        "acme:",
        `  directory: ${pebble.directoryUrl}`,
        `  ca_cert: ${dir}/ca.pem`,
        `  dns_resolvers: ["${bind.dnsServer}"]`,
        "dns:",
        "  provider: exec",
        "  exec:",
        `    command: [${hook}, "${bind.port}", ${bind.keyFile}, ${dir}/hook.log]`,
        "    timeout: 20s",
        `wildcards: ["*.${bind.zone}"]`,
        "proxies:",
        `  "app.${bind.zone}":`,
        `    upstream: ${app.url}`,
        "",
      ].join("\n"),
      {
        dir,
        // From source, nexo also reads its own modules (the compiled binary carries them inside).
        permissions: flags.map((f) =>
          f === `--allow-read=${dir}` ? `${f},${new URL("..", import.meta.url).pathname}` : f
        ),
      },
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
      const calls = (await Deno.readTextFile(`${dir}/hook.log`)).trim().split("\n").map((l) =>
        l.split(" ")[0]
      );
      assert.deepEqual(calls, ["present", "present", "cleanup", "cleanup"]);
    } finally {
      await nexo.stop();
    }
  } finally {
    await pebble.stop();
    await app.close();
    await Deno.remove(dir, { recursive: true });
  }
});
