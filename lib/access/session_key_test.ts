import assert from "node:assert/strict";
import { loadSessionKey } from "./session_key.ts";

Deno.test("loadSessionKey makes a 0600 key once and reads the same key after", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const first = await loadSessionKey(dir);
    assert.equal(first.path, `${dir}/auth/session.key`);
    assert.equal(first.problem, null);
    assert.equal(first.secret.length, 32);
    assert.equal((await Deno.stat(first.path!)).mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(`${dir}/auth`)).mode! & 0o777, 0o700);
    const again = await loadSessionKey(dir);
    assert.deepEqual(again.secret, first.secret, "sessions survive a restart");
    assert.notDeepEqual((await loadSessionKey(await Deno.makeTempDir())).secret, first.secret);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadSessionKey refuses a file that is not a key, and keeps a key in memory when it cannot write", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/auth`);
    await Deno.writeTextFile(`${dir}/auth/session.key`, "hello\n");
    await assert.rejects(loadSessionKey(dir), /session\.key is not a session key nexo wrote.*delete it/);
    // Nothing can be made under /proc, even as root.
    const memory = await loadSessionKey("/proc/nexo-base-dir");
    assert.equal(memory.path, null);
    assert.equal(memory.secret.length, 32);
    assert.match(memory.problem ?? "", /^cannot write \/proc\/nexo-base-dir\/auth\/session\.key: /);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
