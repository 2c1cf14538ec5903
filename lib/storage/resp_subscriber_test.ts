// RespSubscriber against a real redis-server (messages, an outage, passwords) and against fake servers that
// fall silent, never confirm or send too much; every test closes what it started (sanitizers on).

import assert from "node:assert/strict";
import { capturingLogger } from "../log_capture.ts";
import { closedPort } from "../../tests/upstreams.ts";
import { type RedisServer, startRedis } from "../../tests/redis.ts";
import { RespClient } from "./resp_client.ts";
import { parseRedisUrl } from "./redis_url.ts";
import { RespSubscriber, type RespSubscriberOptions } from "./resp_subscriber.ts";

const CHANNEL = "nexo:events";
const CLIENT_OPTIONS = { connectTimeoutMs: 2_000, commandTimeoutMs: 5_000 };

/** What the callbacks saw, in order: "connected", "disconnected", "message <payload>". */
interface Recorder {
  events: string[];
  errors: Error[];
  count(event: string): number;
}

function subscriber(
  url: string,
  overrides: Partial<RespSubscriberOptions> = {},
): { subscriber: RespSubscriber; seen: Recorder } {
  const events: string[] = [];
  const errors: Error[] = [];
  const subscriber = new RespSubscriber({
    address: parseRedisUrl(url),
    channel: CHANNEL,
    connectTimeoutMs: 1_000,
    pingIntervalMs: 5_000,
    backoff: { firstMs: 20, maxMs: 100 },
    onMessage: (payload) => events.push(`message ${payload}`),
    onConnected: () => events.push("connected"),
    onDisconnected: (error) => {
      events.push("disconnected");
      errors.push(error);
    },
    ...overrides,
  });
  return { subscriber, seen: { events, errors, count: (event) => events.filter((e) => e === event).length } };
}

/** Polls `condition` (a referenced timer, so the test keeps the event loop alive) until it holds. */
async function until(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function publish(redis: RedisServer, payload: string, password?: string): Promise<number> {
  const client = new RespClient(parseRedisUrl(redis.url), {
    ...CLIENT_OPTIONS,
    ...(password ? { password } : {}),
  });
  try {
    return (await client.command(["PUBLISH", CHANNEL, payload])) as number;
  } finally {
    client.close();
  }
}

Deno.test("RespSubscriber hands over a message published from a RespClient, after one onConnected", async () => {
  await using redis = await startRedis();
  const { subscriber: sub, seen } = subscriber(redis.url);
  try {
    assert.equal(sub.connected, false);
    sub.start();
    sub.start(); // a second start() changes nothing
    await until(() => sub.connected, "the subscription");
    assert.equal(await publish(redis, "example.com/cert.pem"), 1);
    await until(() => seen.events.includes("message example.com/cert.pem"), "the message");
    assert.equal(await publish(redis, "é ✓"), 1);
    await until(() => seen.events.includes("message é ✓"), "a UTF-8 message");
    assert.deepEqual(seen.events, ["connected", "message example.com/cert.pem", "message é ✓"]);
  } finally {
    await sub.close();
  }
  assert.equal(sub.connected, false);
});

Deno.test("RespSubscriber says once that Redis is gone and again when it is back; messages flow again", async () => {
  await using redis = await startRedis();
  const { subscriber: sub, seen } = subscriber(redis.url);
  try {
    sub.start();
    await until(() => sub.connected, "the subscription");
    await redis.stop();
    await until(() => seen.count("disconnected") === 1, "onDisconnected");
    assert.equal(sub.connected, false);
    assert.match(seen.errors[0]!.message, /redis:\/\/127\.0\.0\.1:\d+\/0 closed the connection/);
    await pause(400); // several refused retries (backoff 20 to 100 ms): still one outage
    assert.equal(seen.count("disconnected"), 1);
    assert.equal(seen.count("connected"), 1);

    await redis.start();
    await until(() => seen.count("connected") === 2, "onConnected after the outage");
    assert.equal(sub.connected, true);
    assert.equal(await publish(redis, "after"), 1);
    await until(() => seen.events.includes("message after"), "a message after the outage");
    assert.deepEqual(seen.events, ["connected", "disconnected", "connected", "message after"]);
  } finally {
    await sub.close();
  }
});

Deno.test("RespSubscriber logs in with a password; a wrong or missing one is named without the password", async () => {
  const password = "s3cret-pass";
  await using redis = await startRedis({ password });

  const right = subscriber(redis.url, { password });
  try {
    right.subscriber.start();
    await until(() => right.subscriber.connected, "the subscription with the password");
    assert.equal(await publish(redis, "hello", password), 1);
    await until(() => right.seen.events.includes("message hello"), "the message");
  } finally {
    await right.subscriber.close();
  }

  const wrong = subscriber(redis.url.replace("redis://", "redis://:wr0ng-p4ss@"));
  try {
    wrong.subscriber.start();
    await until(() => wrong.seen.count("disconnected") === 1, "onDisconnected with a wrong password");
    const message = wrong.seen.errors[0]!.message;
    assert.match(message, /redis:\/\/127\.0\.0\.1:\d+\/0 refused nexo's login: WRONGPASS/);
    assert.ok(!message.includes("wr0ng-p4ss"), message);
    await pause(200);
    assert.deepEqual(wrong.seen.events, ["disconnected"], "one call for the outage, not one per retry");
  } finally {
    await wrong.subscriber.close();
  }

  const missing = subscriber(redis.url);
  try {
    missing.subscriber.start();
    await until(() => missing.seen.count("disconnected") === 1, "onDisconnected without a password");
    assert.match(missing.seen.errors[0]!.message, /refused SUBSCRIBE nexo:events: NOAUTH.*password/);
  } finally {
    await missing.subscriber.close();
  }
});

/**
 * A server that accepts TCP, reads everything and never writes, like a host that vanished without a RST;
 * with `confirm` it first confirms the SUBSCRIBE of each connection and sends `then`, then falls silent.
 */
function silentServer(
  options: { confirm: boolean; then?: Uint8Array },
): { url: string; accepted: () => number; close(): Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving: Promise<void>[] = [];
  let accepted = 0;
  const serve = async (conn: Deno.Conn) => {
    const buffer = new Uint8Array(4096);
    let confirmed = !options.confirm;
    try {
      while ((await conn.read(buffer)) !== null) {
        if (!confirmed) {
          confirmed = true;
          const reply = `*3\r\n$9\r\nsubscribe\r\n$${CHANNEL.length}\r\n${CHANNEL}\r\n:1\r\n`;
          await conn.write(new TextEncoder().encode(reply));
          for (let offset = 0; options.then && offset < options.then.length;) {
            offset += await conn.write(options.then.subarray(offset));
          }
        }
      }
    } catch {
      // the subscriber closed it
    } finally {
      conn.close();
    }
  };
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        accepted++;
        serving.push(serve(conn));
      }
    } catch {
      // the listener was closed
    }
  })();
  return {
    url: `redis://127.0.0.1:${listener.addr.port}/0`,
    accepted: () => accepted,
    close: async () => {
      listener.close();
      await accepting;
      await Promise.all(serving);
    },
  };
}

Deno.test("RespSubscriber notices a server that stops answering: its PING times out, onDisconnected is called", async () => {
  const server = silentServer({ confirm: true });
  const { subscriber: sub, seen } = subscriber(server.url, { pingIntervalMs: 100, connectTimeoutMs: 200 });
  try {
    sub.start();
    await until(() => seen.count("disconnected") === 1, "onDisconnected");
    assert.equal(seen.events[0], "connected");
    assert.match(seen.errors[0]!.message, /redis:\/\/127\.0\.0\.1:\d+\/0 did not answer PING within 200 ms/);
    // It confirms again on reconnecting: that ends the outage.
    await until(() => seen.count("connected") === 2, "onConnected again");
  } finally {
    await sub.close();
    await server.close();
  }
});

Deno.test("RespSubscriber gives up a server that never confirms SUBSCRIBE, once per outage however often it retries", async () => {
  const server = silentServer({ confirm: false });
  const { subscriber: sub, seen } = subscriber(server.url, { connectTimeoutMs: 100 });
  try {
    sub.start();
    await until(() => server.accepted() >= 3, "three attempts");
    assert.deepEqual(seen.events, ["disconnected"]);
    assert.match(seen.errors[0]!.message, /did not confirm SUBSCRIBE nexo:events within 100 ms/);
  } finally {
    await sub.close();
    await server.close();
  }
});

Deno.test("RespSubscriber breaks the connection on a message over 1 MiB instead of buffering it", async () => {
  const header = `*3\r\n$7\r\nmessage\r\n$${CHANNEL.length}\r\n${CHANNEL}\r\n$${400 * 1024 * 1024}\r\n`;
  const huge = new Uint8Array(header.length + 1200 * 1024).fill(0x61);
  huge.set(new TextEncoder().encode(header));
  const server = silentServer({ confirm: true, then: huge });
  const { subscriber: sub, seen } = subscriber(server.url, { backoff: { firstMs: 60_000, maxMs: 60_000 } });
  try {
    sub.start();
    await until(() => seen.count("disconnected") === 1, "onDisconnected");
    assert.deepEqual(seen.events, ["connected", "disconnected"]);
    assert.match(seen.errors[0]!.message, /sent a reply over 1048576 bytes on nexo:events/);
  } finally {
    await sub.close();
    await server.close();
  }
});

Deno.test("RespSubscriber carries on when a callback throws, and logs it", async () => {
  await using redis = await startRedis();
  const { log, flushed } = capturingLogger();
  const messages: string[] = [];
  const sub = new RespSubscriber({
    address: parseRedisUrl(redis.url),
    channel: CHANNEL,
    connectTimeoutMs: 1_000,
    pingIntervalMs: 5_000,
    backoff: { firstMs: 20, maxMs: 100 },
    onMessage: (payload) => {
      messages.push(payload);
      throw new Error(`cannot handle ${payload}`);
    },
    onConnected: () => {
      throw new Error("onConnected broke");
    },
    onDisconnected: () => {},
    log,
  });
  try {
    sub.start();
    await until(() => sub.connected, "the subscription");
    await publish(redis, "one");
    await publish(redis, "two");
    await until(() => messages.length === 2, "both messages");
    assert.equal(sub.connected, true);
    assert.deepEqual(flushed().map((line) => [line.msg, line.callback, line.error]), [
      ["redis subscriber callback failed", "onConnected", "onConnected broke"],
      ["redis subscriber callback failed", "onMessage", "cannot handle one"],
      ["redis subscriber callback failed", "onMessage", "cannot handle two"],
    ]);
  } finally {
    await sub.close();
  }
});

Deno.test("RespSubscriber.close() ends a backoff wait and a login under way at once, and calls nothing after", async () => {
  const refused = subscriber(`redis://127.0.0.1:${closedPort()}/0`, {
    backoff: { firstMs: 60_000, maxMs: 60_000 },
  });
  refused.subscriber.start();
  await until(() => refused.seen.count("disconnected") === 1, "onDisconnected for a closed port");
  assert.match(refused.seen.errors[0]!.message, /Cannot connect to redis:\/\/127\.0\.0\.1:\d+\/0: /);
  let started = Date.now();
  await refused.subscriber.close();
  assert.ok(Date.now() - started < 500, `close() took ${Date.now() - started} ms`);

  // AUTH sent to a server that never answers: close() does not wait for the 10 s login timeout.
  const server = silentServer({ confirm: false });
  const login = subscriber(server.url.replace("redis://", "redis://:pw@"), { connectTimeoutMs: 10_000 });
  login.subscriber.start();
  await until(() => server.accepted() === 1, "the connection");
  started = Date.now();
  await login.subscriber.close();
  assert.ok(Date.now() - started < 500, `close() took ${Date.now() - started} ms`);
  await server.close();
  assert.deepEqual(login.seen.events, []);

  const never = subscriber("redis://127.0.0.1:1/0");
  await never.subscriber.close();
  never.subscriber.start(); // after close(): nothing
  await pause(50);
  assert.deepEqual(never.seen.events, []);
});
