// bcrypt against published vectors and against bcryptjs (a test-only npm import: the main isolate never loads
// it). Property test seed and case count: NEXO_FUZZ_SEED, NEXO_FUZZ_RUNS (see tests/fuzz.ts).

import assert from "node:assert/strict";
import bcryptjs from "bcryptjs";
import { fuzzRuns, fuzzSeed, Rng, showString } from "../../tests/fuzz.ts";
import { BCRYPT_MAX_PASSWORD_BYTES, bcryptHash, bcryptVerify, parseBcryptHash } from "./bcrypt.ts";

const utf8 = (text: string) => new TextEncoder().encode(text);

// Openwall crypt_blowfish's own test list (also John the Ripper's): ASCII passwords, $2a$ at cost 5.
const PUBLISHED_VECTORS: ReadonlyArray<readonly [string, string]> = [
  ["U*U", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"],
  ["U*U*", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK"],
  ["U*U*U", "$2a$05$XXXXXXXXXXXXXXXXXXXXXOAcXxm9kjPGEMsLznoKqmqw7tc8WCx4a"],
  ["", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.7uG0VCzI2bS7j6ymqJi9CdcdxiRTWNy"],
  [
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789chars after 72 are ignored",
    "$2a$05$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui",
  ],
];

const A71 = "a".repeat(71);
/** Passwords for the bcryptjs cross-checks: empty, ASCII, multibyte UTF-8, the 72-byte edge, NUL, 255+. */
const PASSWORDS = [
  "",
  "password",
  "correct horse battery staple",
  "pässwörd",
  "пароль",
  "日本語のパスワード",
  "🔑 key 🔐",
  "a".repeat(72), // exactly 72 bytes: no room for the NUL
  A71 + "é", // 73 bytes: "é" is cut after its first byte
  "x".repeat(100),
  "ü".repeat(150), // 300 bytes: past OpenBSD $2a$'s 255-byte wrap-around
  "a\0b", // an embedded NUL is a key byte, not the end
];

/** The bytes bcrypt reads of `password`: its UTF-8, a NUL, cut to 72. */
function keyBytes(password: string): Uint8Array {
  const bytes = new Uint8Array(BCRYPT_MAX_PASSWORD_BYTES);
  const encoded = utf8(password);
  bytes.set(encoded.subarray(0, BCRYPT_MAX_PASSWORD_BYTES));
  return bytes.subarray(0, Math.min(encoded.length + 1, BCRYPT_MAX_PASSWORD_BYTES));
}

const sameKey = (a: string, b: string) => keyBytes(a).join() === keyBytes(b).join();

/** A bcryptjs salt ("$2b$05$" + 22 characters) with the version `version` instead of bcryptjs's "2b". */
function bcryptjsSalt(version: string, cost: number): string {
  return `$${version}$${bcryptjsSaltCost(cost)}$${bcryptjs.genSaltSync(cost).slice(7)}`;
}
const bcryptjsSaltCost = (cost: number) => String(cost).padStart(2, "0");

Deno.test("bcryptVerify() accepts crypt_blowfish's published $2a$ vectors and refuses a wrong password", async () => {
  for (const [password, hash] of PUBLISHED_VECTORS) {
    assert.equal(await bcryptVerify(password, hash), true, `${JSON.stringify(password)} ${hash}`);
    assert.equal(await bcryptVerify("x" + password, hash), false, hash);
  }
  assert.equal(await bcryptVerify("U*U", PUBLISHED_VECTORS[1]![1]), false);
});

Deno.test("bcryptVerify() matches crypt_blowfish's $2b$ and $2y$ vectors for raw bytes >= 0x80", async () => {
  const salt = "/OK.fbVrR/bpIqNJ5ianF.";
  assert.equal(
    await bcryptVerify(Uint8Array.of(0xa3), `$2y$05$${salt}Sa7shbm4.OzKpvFnX1pQLmQW96oUlCq`),
    true,
  );
  assert.equal(
    await bcryptVerify(Uint8Array.of(0xa3), `$2b$05$${salt}Sa7shbm4.OzKpvFnX1pQLmQW96oUlCq`),
    true,
  );
  const ffffa3 = Uint8Array.of(0xff, 0xff, 0xa3);
  assert.equal(await bcryptVerify(ffffa3, `$2y$05$${salt}CE5elHaaO4EbggVDjb8P19RukzXSM3e`), true);
  assert.equal(await bcryptVerify(ffffa3, `$2b$05$${salt}CE5elHaaO4EbggVDjb8P19RukzXSM3e`), true);
});

Deno.test("bcryptVerify() computes $2a$ as OpenBSD does, not as crypt_blowfish's 0xFF safety variant", async () => {
  // crypt_blowfish's $2a$ flips a key-schedule bit for some passwords with 0xFF bytes (never in UTF-8); OpenBSD's
  // $2a$ and nexo hash them as $2b$. The module comment says so; this pins it.
  const salt = "/OK.fbVrR/bpIqNJ5ianF.";
  const ffffa3 = Uint8Array.of(0xff, 0xff, 0xa3);
  assert.equal(await bcryptVerify(ffffa3, `$2a$05$${salt}CE5elHaaO4EbggVDjb8P19RukzXSM3e`), true);
  assert.equal(await bcryptVerify(ffffa3, `$2a$05$${salt}nqd1wy.pTMdcvrRWxyiGL2eMz.2a85.`), false);
});

Deno.test("bcryptVerify() accepts what bcryptjs hashes, for $2a$, $2b$ and $2y$ at costs 4 and 5", async () => {
  for (const version of ["2a", "2b", "2y"]) {
    for (const cost of [4, 5]) {
      for (const password of PASSWORDS) {
        const hash = bcryptjs.hashSync(password, bcryptjsSalt(version, cost));
        assert.ok(hash.startsWith(`$${version}$0${cost}$`), hash);
        const label = `${showString(password)} ${hash}`;
        assert.equal(await bcryptVerify(password, hash), true, label);
        assert.equal(await bcryptVerify(password, hash.replace(/^\$2.\$/, "$2b$")), true, label);
        assert.equal(await bcryptVerify(password + "!", hash), sameKey(password, password + "!"), label);
        assert.equal(
          await bcryptVerify(password.slice(0, -1), hash),
          sameKey(password, password.slice(0, -1)),
        );
      }
    }
  }
});

Deno.test("bcryptHash() makes what bcryptjs makes from the same salt, and bcryptjs accepts it", async () => {
  for (const cost of [4, 5]) {
    for (const password of PASSWORDS) {
      const hash = await bcryptHash(password, cost);
      assert.equal(bcryptjs.hashSync(password, hash.slice(0, 29)), hash, showString(password));
      assert.equal(bcryptjs.compareSync(password, hash), true, showString(password));
    }
  }
});

Deno.test("bcryptHash() and bcryptVerify() agree with bcryptjs at cost 10", async () => {
  for (const password of ["correct horse battery staple", "日本語のパスワード"]) {
    const ours = await bcryptHash(password, 10);
    assert.match(ours, /^\$2b\$10\$/);
    assert.equal(bcryptjs.compareSync(password, ours), true);
    const theirs = bcryptjs.hashSync(password, 10);
    assert.equal(await bcryptVerify(password, theirs), true);
    assert.equal(await bcryptVerify(password + " ", theirs), false);
  }
});

Deno.test("bcrypt counts only the first 72 bytes of the password's UTF-8", async () => {
  const hash = await bcryptHash("a".repeat(72), 4);
  assert.equal(await bcryptVerify("a".repeat(72), hash), true);
  assert.equal(await bcryptVerify("a".repeat(72) + "anything after", hash), true);
  assert.equal(await bcryptVerify("a".repeat(71), hash), false);
  // "é" is C3 A9 and "è" C3 A8: at byte 72 both are cut to C3, so they hash alike (bcryptjs too).
  const cut = await bcryptHash(A71 + "é", 4);
  assert.equal(await bcryptVerify(A71 + "è", cut), true);
  assert.equal(bcryptjs.compareSync(A71 + "è", cut), true);
  assert.equal(await bcryptVerify(A71, cut), false);
});

Deno.test("bcryptVerify() reads a string as UTF-8: the same bytes given raw verify alike", async () => {
  const hash = await bcryptHash("pässwörd", 4);
  assert.equal(await bcryptVerify(utf8("pässwörd"), hash), true);
  assert.equal(await bcryptVerify(Uint8Array.of(0x70, 0xe4, 0x73, 0x73), await bcryptHash("päss", 4)), false);
});

Deno.test("bcryptHash() makes a $2b$ hash with a fresh salt each time", async () => {
  const first = await bcryptHash("secret", 4);
  const second = await bcryptHash("secret", 4);
  assert.match(first, /^\$2b\$04\$[./A-Za-z0-9]{53}$/);
  assert.notEqual(first.slice(7, 29), second.slice(7, 29));
  assert.deepEqual(parseBcryptHash(first), { version: "2b", cost: 4 });
});

Deno.test("bcryptHash() refuses a cost outside 4..31 with a RangeError", async () => {
  for (const cost of [3, 32, 0, -1, 4.5, Number.NaN, Infinity]) {
    await assert.rejects(() => bcryptHash("secret", cost), RangeError, String(cost));
  }
});

Deno.test("parseBcryptHash() reads the version and the cost", () => {
  assert.deepEqual(parseBcryptHash(PUBLISHED_VECTORS[0]![1]), { version: "2a", cost: 5 });
  const tail = "CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
  assert.deepEqual(parseBcryptHash(`$2y$04$${tail}`), { version: "2y", cost: 4 });
  assert.deepEqual(parseBcryptHash(`$2b$31$${tail}`), { version: "2b", cost: 31 });
  assert.deepEqual(parseBcryptHash(`$2b$12$${tail}`), { version: "2b", cost: 12 });
});

const VALID = "$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
const MALFORMED = [
  "",
  "secret",
  "$2b$",
  VALID.replace("$2b$", "$2x$"), // crypt_blowfish's buggy variant: not accepted
  VALID.replace("$2b$", "$2c$"),
  VALID.replace("$2b$", "$2B$"),
  VALID.replace("$2b$", "$2$"),
  VALID.replace("$2b$", "$3b$"),
  VALID.replace("$2b$", "2b$"),
  VALID.replace("$05$", "$03$"),
  VALID.replace("$05$", "$32$"),
  VALID.replace("$05$", "$99$"),
  VALID.replace("$05$", "$5$"),
  VALID.replace("$05$", "$005$"),
  VALID.replace("$05$", "$0a$"),
  VALID.replace("$05$", "$ 5$"),
  VALID.replace("$05$", "$05"),
  VALID.slice(0, -1), // 52 characters after the cost
  VALID + "W", // 54
  VALID + "\n",
  VALID + " ",
  " " + VALID,
  VALID.slice(0, 20) + "+" + VALID.slice(21), // RFC 4648's alphabet, not bcrypt's
  VALID.slice(0, 20) + "=" + VALID.slice(21),
  VALID.slice(0, 20) + "-" + VALID.slice(21),
  VALID.slice(0, 20) + "$" + VALID.slice(21),
  VALID.slice(0, 20) + "é" + VALID.slice(21),
  VALID.slice(0, 29) + "$" + VALID.slice(29),
  "$2b$05$" + "C".repeat(52) + "\u{1F511}",
  "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
  "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=",
];

Deno.test("parseBcryptHash() is null and bcryptVerify() false, never throwing, for malformed hashes", async () => {
  assert.deepEqual(parseBcryptHash(VALID), { version: "2b", cost: 5 });
  assert.equal(await bcryptVerify("U*U", VALID), true);
  for (const hash of MALFORMED) {
    assert.equal(parseBcryptHash(hash), null, showString(hash));
    assert.equal(await bcryptVerify("U*U", hash), false, showString(hash));
  }
});

Deno.test("bcryptVerify() refuses a hash whose unused padding bits are set, as OpenBSD and bcryptjs do", async () => {
  // The digest's last character carries 4 bits and the salt's last 2: "W" -> "X" and "." -> "/" change only
  // padding. They parse (the format allows them) but never verify, since the recomputed string differs.
  const digestPadding = VALID.slice(0, -1) + "X";
  const saltPadding = VALID.slice(0, 28) + "/" + VALID.slice(29);
  for (const hash of [digestPadding, saltPadding]) {
    assert.notEqual(parseBcryptHash(hash), null);
    assert.equal(await bcryptVerify("U*U", hash), false, hash);
    assert.equal(bcryptjs.compareSync("U*U", hash), false, hash);
  }
});

/** A random password: up to 40 characters from ASCII, controls, Latin-1, Cyrillic, CJK and astral emoji. */
function randomPassword(rng: Rng): string {
  const ranges: ReadonlyArray<readonly [number, number]> = [
    [0x20, 0x7e],
    [0x00, 0x1f],
    [0xa0, 0xff],
    [0x400, 0x4ff],
    [0x4e00, 0x9fff],
    [0x1f300, 0x1f5ff],
  ];
  return rng.repeat(rng.int(41), () => {
    const [low, high] = rng.pick(ranges);
    return String.fromCodePoint(rng.between(low, high));
  });
}

Deno.test("bcryptHash() round-trips random passwords, bcryptjs agreeing (property)", async () => {
  const seed = fuzzSeed();
  const runs = fuzzRuns(30);
  for (let i = 0; i < runs; i++) {
    const rng = new Rng(seed, i);
    const password = randomPassword(rng);
    const other = rng.chance(0.5) ? password + randomPassword(rng) : randomPassword(rng);
    const cost = rng.between(4, 6);
    const where = `case ${i} (NEXO_FUZZ_SEED=${seed}): ${showString(password)} / ${showString(other)}`;
    const hash = await bcryptHash(password, cost);
    assert.equal(await bcryptVerify(password, hash), true, where);
    assert.equal(bcryptjs.compareSync(password, hash), true, where);
    assert.equal(await bcryptVerify(other, hash), sameKey(password, other), where);
  }
});

Deno.test("bcryptVerify() at cost 12 lets a 5 ms interval keep firing", async () => {
  const hash = bcryptjs.hashSync("correct horse battery staple", 12);
  const gaps: number[] = [];
  let last = performance.now();
  const started = last;
  const timer = setInterval(() => {
    const now = performance.now();
    gaps.push(now - last);
    last = now;
  }, 5);
  let matched: boolean;
  try {
    matched = await bcryptVerify("correct horse battery staple", hash);
  } finally {
    clearInterval(timer);
  }
  const elapsed = performance.now() - started;
  assert.equal(matched, true);
  // 25 ms slices: a tick every ~27 ms; 100 ms leaves room for a loaded test machine.
  assert.ok(gaps.length >= elapsed / 100, `${gaps.length} ticks in ${elapsed.toFixed(0)} ms`);
  assert.ok(Math.max(...gaps) < 100, `longest gap ${Math.max(...gaps).toFixed(1)} ms`);
});

Deno.test("bcryptVerify() at cost 12 lets a local HTTP server answer requests meanwhile", async () => {
  const hash = bcryptjs.hashSync("correct horse battery staple", 12);
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("ok"),
  );
  let pending = true;
  let answered = 0;
  const verify = bcryptVerify("correct horse battery staple", hash).finally(() => pending = false);
  while (pending) {
    const response = await fetch(`http://127.0.0.1:${server.addr.port}/`);
    assert.equal(await response.text(), "ok");
    if (pending) answered++;
  }
  assert.equal(await verify, true);
  assert.ok(answered >= 5, `${answered} requests answered during the verify`);
});

Deno.test("bcryptVerify() with sliceMs Infinity holds the event loop: the measurements above can fail", async () => {
  const hash = bcryptjs.hashSync("pw", 8);
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  try {
    assert.equal(await bcryptVerify("pw", hash, { sliceMs: Infinity }), true);
  } finally {
    clearInterval(timer);
  }
  assert.equal(ticks, 0);
});
