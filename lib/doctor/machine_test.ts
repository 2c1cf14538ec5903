import assert from "node:assert/strict";
import {
  checkFileLimit,
  checkListen,
  checkMigrateReq,
  checkWritable,
  findListener,
  isNexoCommand,
} from "./machine.ts";
import { clockFinding } from "./ca.ts";

/** A /proc of our own: one process (pid 4242, `argv`) listening on `port` through socket inode 777. */
async function fakeProc(port: number, argv: string[], extra: Record<string, string> = {}): Promise<string> {
  const proc = await Deno.makeTempDir({ prefix: "nexo-proc-" });
  await Deno.mkdir(`${proc}/net`);
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  const header =
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode";
  await Deno.writeTextFile(
    `${proc}/net/tcp`,
    `${header}\n   0: 0100007F:${hexPort} 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1\n` +
      `   1: 0100007F:${hexPort} 0100007F:9999 01 00000000:00000000 00:00000000 00000000     0        0 778 1\n`,
  );
  await Deno.mkdir(`${proc}/4242/fd`, { recursive: true });
  await Deno.symlink("socket:[778]", `${proc}/4242/fd/3`);
  await Deno.symlink("socket:[777]", `${proc}/4242/fd/4`);
  await Deno.writeTextFile(`${proc}/4242/comm`, `${argv[0]!.split("/").pop()}\n`);
  await Deno.writeTextFile(`${proc}/4242/cmdline`, argv.join("\0") + "\0");
  for (const [path, text] of Object.entries(extra)) {
    await Deno.mkdir(`${proc}/${path.split("/").slice(0, -1).join("/")}`, { recursive: true });
    await Deno.writeTextFile(`${proc}/${path}`, text);
  }
  return proc;
}

Deno.test("findListener() names the process whose socket listens on the port, through /proc", async () => {
  const proc = await fakeProc(443, ["/usr/sbin/nginx", "-g", "daemon off;"]);
  try {
    assert.deepEqual(await findListener(443, proc), { pid: 4242, name: "nginx", isNexo: false });
    assert.equal(await findListener(8443, proc), null, "nobody listens on 8443");
  } finally {
    await Deno.remove(proc, { recursive: true });
  }
});

Deno.test("isNexoCommand() knows the compiled server and deno running main.ts or the bundle's server", () => {
  assert.ok(isNexoCommand(["/usr/local/bin/nexo", "server"]));
  assert.ok(isNexoCommand(["deno", "run", "-A", "/srv/nexo/main.ts", "serve", "-c", "x"]));
  assert.ok(
    isNexoCommand(["/usr/local/lib/nexo/bin/deno", "run", "/usr/local/lib/nexo/app/dist/main.js", "server"]),
  );
  assert.ok(!isNexoCommand(["deno", "run", "/srv/other/main.js", "server"]));
  assert.ok(!isNexoCommand(["/usr/local/bin/nexo", "doctor"]));
  assert.ok(!isNexoCommand(["deno", "eval", "Deno.listen({port: 443})"]));
  assert.ok(!isNexoCommand(["/usr/sbin/nginx"]));
});

Deno.test("checkListen() binds a free port and names the holder of a taken one", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = taken.addr.port;
  const proc = await fakeProc(port, ["/usr/sbin/nginx"]);
  try {
    const held = await checkListen("listen", { hostname: "127.0.0.1", port }, proc);
    assert.equal(held.status, "problem");
    assert.match(held.message, /another program holds port \d+: nginx \(pid 4242\)/);
    assert.match(held.fix ?? "", /systemctl status 4242/);
    const unnamed = await checkListen("listen", { hostname: "127.0.0.1", port }, "/nonexistent");
    assert.equal(unnamed.status, "warning");
    taken.close();
    assert.equal((await checkListen("listen", { hostname: "127.0.0.1", port }, proc)).status, "ok");
    // ":443" in the config: every address, as the server binds it.
    assert.equal((await checkListen("listen", { hostname: "", port }, proc)).status, "ok");
    const absent = await checkListen("listen", { hostname: "192.0.2.254", port }, proc);
    assert.equal(absent.status, "problem");
    assert.match(absent.fix ?? "", /0\.0\.0\.0:\d+/);
  } finally {
    await Deno.remove(proc, { recursive: true });
  }
});

Deno.test("checkFileLimit() warns below 8192 open files and says how to raise it", async () => {
  const limits = (soft: string) => ({
    "self/limits": `Limit                     Soft Limit           Hard Limit           Units\n` +
      `Max open files            ${soft}                 524288               files\n`,
  });
  for (const [soft, status] of [["1024", "warning"], ["65536", "ok"], ["unlimited", "ok"]] as const) {
    const proc = await fakeProc(1, ["x"], limits(soft));
    try {
      const result = await checkFileLimit(proc);
      assert.equal(result.status, status, soft);
      if (status === "warning") assert.match(result.fix ?? "", /LimitNOFILE=65536/);
    } finally {
      await Deno.remove(proc, { recursive: true });
    }
  }
});

Deno.test("checkMigrateReq() is silent where the sysctl does not exist, and reads it where it does", async () => {
  const proc = await fakeProc(1, ["x"]);
  try {
    assert.equal(await checkMigrateReq(proc), null);
    await Deno.mkdir(`${proc}/sys/net/ipv4`, { recursive: true });
    await Deno.writeTextFile(`${proc}/sys/net/ipv4/tcp_migrate_req`, "1\n");
    assert.equal((await checkMigrateReq(proc))?.status, "ok");
  } finally {
    await Deno.remove(proc, { recursive: true });
  }
});

Deno.test("clockFinding() is ok within a minute, a warning past it and a problem past an hour", () => {
  const ca = Date.parse("Mon, 07 Dec 2026 12:00:00 GMT");
  const date = new Date(ca).toUTCString();
  assert.equal(clockFinding(date, ca + 20_000).status, "ok");
  const ahead = clockFinding(date, ca + 90_000);
  assert.equal(ahead.status, "warning");
  assert.match(ahead.message, /^90 s ahead of the CA's/);
  assert.equal(clockFinding(date, ca - 2 * 3_600_000).status, "problem");
  assert.equal(clockFinding(null, ca).status, "skipped");
});

Deno.test("checkWritable() writes where nexo will, names a file in the way, and leaves nothing behind", async () => {
  const dir = await Deno.makeTempDir({ prefix: "nexo-writable-" });
  try {
    const existing = await checkWritable("cert_dir", dir);
    assert.deepEqual([existing.status, existing.message], ["ok", "writable"]);
    const later = await checkWritable("cert_dir", `${dir}/a/b`);
    assert.equal(later.status, "ok");
    assert.match(later.message, /does not exist yet; nexo will create it under .*nexo-writable-/);
    await Deno.writeTextFile(`${dir}/file`, "");
    const file = await checkWritable("cert_dir", `${dir}/file/certs`);
    assert.equal(file.status, "problem");
    assert.match(file.message, /\/file is a file, not a folder/);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["file"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
