import assert from "node:assert/strict";
import { SESSION_LIMITS, Sessions } from "./sessions.ts";

Deno.test("Sessions end when idle, at their lifetime, on sign-out, and the oldest first past the limit", () => {
  let now = 0;
  const sessions = new Sessions({ now: () => now });
  const a = sessions.create("admin");
  assert.match(a.id, /^[A-Za-z0-9_-]{43}$/);
  assert.notEqual(a.id, a.csrf);
  now += SESSION_LIMITS.idleMs - 1;
  assert.equal(sessions.get(a.id)?.username, "admin", "used just in time: the idle timer restarts");
  now += SESSION_LIMITS.idleMs + 1;
  assert.equal(sessions.get(a.id), undefined, "idle too long");
  const b = sessions.create("admin");
  for (let i = 0; i * SESSION_LIMITS.idleMs / 2 < SESSION_LIMITS.lifetimeMs; i++) {
    now += SESSION_LIMITS.idleMs / 2;
    sessions.get(b.id);
  }
  assert.ok(sessions.get(b.id), "alive at exactly its lifetime");
  now += 1;
  assert.equal(sessions.get(b.id), undefined, "kept busy, still ends at its lifetime");
  const c = sessions.create("admin");
  assert.equal(sessions.delete(c.id), true);
  assert.equal(sessions.get(c.id), undefined);
  assert.equal(sessions.get(null), undefined);
  const first = sessions.create("admin");
  for (let i = 1; i < SESSION_LIMITS.max; i++) sessions.create("admin");
  assert.ok(sessions.get(first.id), "at the limit all live");
  sessions.create("admin");
  assert.equal(sessions.get(first.id), undefined, "past it, the oldest ended");
});
