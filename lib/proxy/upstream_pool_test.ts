import assert from "node:assert/strict";
import { IdleConnections, type ParkableConnection } from "./upstream_pool.ts";

class FakeConnection implements ParkableConnection {
  parked = false;
  closed = false;
  onGone: (() => void) | null = null;
  constructor(readonly name: string) {}
  park(onGone: () => void): void {
    this.parked = true;
    this.onGone = onGone;
  }
  resume(): void {
    this.parked = false;
  }
  close(): void {
    this.closed = true;
  }
}

function until(condition: () => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    let tries = 0;
    const check = () => {
      if (condition()) return resolve();
      if (++tries > 200) return reject(new Error("condition not met within 2 s"));
      setTimeout(check, 10);
    };
    check();
  });
}

Deno.test("IdleConnections.take() returns the most recently parked connection of that origin, resumed", () => {
  const idle = new IdleConnections<FakeConnection>({ maxPerOrigin: 4, idleTimeoutMs: 60_000 });
  const [a, b, c] = [new FakeConnection("a"), new FakeConnection("b"), new FakeConnection("c")];
  idle.put("http://x:80", a);
  idle.put("http://x:80", b);
  idle.put("http://y:80", c);
  assert.equal(idle.size, 3);
  assert.ok(a.parked && b.parked && c.parked);
  assert.equal(idle.take("http://x:80"), b);
  assert.equal(b.parked, false);
  assert.equal(idle.take("http://x:80"), a);
  assert.equal(idle.take("http://x:80"), null);
  assert.equal(idle.size, 1);
  idle.closeAll();
  assert.ok(c.closed);
});

Deno.test("IdleConnections.put() closes the oldest connection past maxPerOrigin", () => {
  const idle = new IdleConnections<FakeConnection>({ maxPerOrigin: 2, idleTimeoutMs: 60_000 });
  const conns = ["a", "b", "c"].map((name) => new FakeConnection(name));
  for (const conn of conns) idle.put("k", conn);
  assert.deepEqual(conns.map((conn) => conn.closed), [true, false, false]);
  assert.equal(idle.size, 2);
  idle.closeAll();
});

Deno.test("IdleConnections evicts and closes a connection whose peer went away while idle", () => {
  const idle = new IdleConnections<FakeConnection>({ maxPerOrigin: 2, idleTimeoutMs: 60_000 });
  const conn = new FakeConnection("a");
  idle.put("k", conn);
  conn.onGone!();
  assert.ok(conn.closed);
  assert.equal(idle.size, 0);
  assert.equal(idle.take("k"), null);
  idle.closeAll();
});

Deno.test("IdleConnections closes connections idle longer than idleTimeoutMs", async () => {
  const idle = new IdleConnections<FakeConnection>({ maxPerOrigin: 4, idleTimeoutMs: 20 });
  const old = new FakeConnection("old");
  idle.put("k", old);
  await until(() => old.closed);
  assert.equal(idle.size, 0);
  idle.closeAll();
});

Deno.test("IdleConnections closes what it is given after closeAll() or with keep-alive off", () => {
  const off = new IdleConnections<FakeConnection>({ maxPerOrigin: 0, idleTimeoutMs: 60_000 });
  const a = new FakeConnection("a");
  off.put("k", a);
  assert.ok(a.closed && !a.parked);
  const closed = new IdleConnections<FakeConnection>({ maxPerOrigin: 4, idleTimeoutMs: 60_000 });
  closed.closeAll();
  const b = new FakeConnection("b");
  closed.put("k", b);
  assert.ok(b.closed);
  assert.equal(closed.size, 0);
});
