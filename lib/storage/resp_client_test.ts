import assert from "node:assert/strict";
import { parseRedisUrl } from "./redis_url.ts";
import { encodeCommand, ReplyReader, RespConnectionError, RespServerError } from "./resp_wire.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

Deno.test("encodeCommand() writes a RESP2 array of bulk strings, binary-safe", () => {
  assert.equal(
    new TextDecoder().decode(encodeCommand(["SET", "k", new Uint8Array([0x41, 0x0d, 0x0a])])),
    "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nA\r\n\r\n",
  );
  assert.equal(
    new TextDecoder().decode(encodeCommand(["SET", "k", "ü"])),
    "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nü\r\n",
  );
});

Deno.test("ReplyReader reads every RESP2 type, across any split of the bytes", () => {
  const wire = "+OK\r\n-ERR wrong type\r\n:42\r\n$5\r\nhe\r\nl\r\n$-1\r\n*2\r\n$1\r\na\r\n:7\r\n*-1\r\n";
  for (let cut = 0; cut <= wire.length; cut++) {
    const reader = new ReplyReader();
    const replies: unknown[] = [];
    for (const part of [wire.slice(0, cut), wire.slice(cut)]) {
      reader.push(bytes(part));
      let reply = reader.next();
      while (typeof reply !== "symbol") {
        replies.push(reply);
        reply = reader.next();
      }
    }
    assert.equal(replies.length, 7, `cut at ${cut}`);
    assert.equal(replies[0], "OK");
    assert.ok(replies[1] instanceof RespServerError && replies[1].message === "ERR wrong type");
    assert.equal(replies[2], 42);
    assert.deepEqual(replies[3], bytes("he\r\nl"));
    assert.equal(replies[4], null);
    assert.deepEqual(replies[5], [bytes("a"), 7]);
    assert.equal(replies[6], null);
  }
});

Deno.test("ReplyReader refuses what is not RESP2 instead of allocating or waiting for it", () => {
  for (const hostile of ["?what\r\n", "$99999999999\r\n", "*2000000\r\n", ":12a\r\n", "$-7\r\n"]) {
    const reader = new ReplyReader();
    reader.push(bytes(hostile));
    assert.throws(() => reader.next(), RespConnectionError, hostile);
  }
  const endless = new ReplyReader();
  endless.push(bytes("+" + "x".repeat(70_000)));
  assert.throws(() => endless.next(), RespConnectionError);
});

Deno.test("parseRedisUrl() reads host, port, database, TLS and credentials, and names what is wrong", () => {
  assert.deepEqual(parseRedisUrl("redis://127.0.0.1"), {
    hostname: "127.0.0.1",
    port: 6379,
    tls: false,
    db: 0,
    username: null,
    password: null,
  });
  assert.deepEqual(parseRedisUrl("rediss://nexo:p%40ss@[::1]:6380/2"), {
    hostname: "::1",
    port: 6380,
    tls: true,
    db: 2,
    username: "nexo",
    password: "p@ss",
  });
  assert.throws(() => parseRedisUrl("http://x"), /scheme must be redis:\/\/ or rediss:\/\//);
  assert.throws(() => parseRedisUrl("redis://x/db"), /database number/);
  const error = (() => {
    try {
      parseRedisUrl("redis://:secret@/x");
    } catch (e) {
      return String(e);
    }
  })();
  assert.ok(!error?.includes("secret"));
});
