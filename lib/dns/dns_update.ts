// DNS UPDATE messages (RFC 2136) signed with TSIG (RFC 8945), on the wire: building an update that adds or
// deletes TXT records, signing it, and reading the server's answer (its RCODE, and its TSIG checked against
// the key), plus the one-question queries `nexo doctor` sends to read an RCODE. Sending them is rfc2136.ts's
// and doctor's business; nothing here does I/O.

/** TSIG algorithms (RFC 8945 §6) WebCrypto's HMAC can compute, by the name the config and BIND use. */
export const TSIG_ALGORITHMS: Readonly<Record<string, "SHA-1" | "SHA-256" | "SHA-384" | "SHA-512">> = {
  "hmac-sha1": "SHA-1",
  "hmac-sha256": "SHA-256",
  "hmac-sha384": "SHA-384",
  "hmac-sha512": "SHA-512",
};

/** A TSIG key: its name (as the server's `key` clause names it), algorithm and secret bytes. */
export interface TsigKey {
  name: string;
  algorithm: keyof typeof TSIG_ALGORITHMS;
  secret: Uint8Array;
}

/** One change of an update (RFC 2136 §2.5): add a TXT value, delete one, or delete every TXT at a name. */
export type TxtChange =
  | { op: "add"; name: string; value: string; ttl: number }
  | { op: "delete"; name: string; value: string }
  | { op: "delete-all"; name: string };

const TYPE_SOA = 6;
const TYPE_TXT = 16;
const TYPE_TSIG = 250;
const CLASS_IN = 1;
const CLASS_NONE = 254;
const CLASS_ANY = 255;
const OPCODE_UPDATE = 5;
/** RFC 8945 §5.2.3's recommended window for clock differences, in seconds. */
const FUDGE_S = 300;

/** RCODE and TSIG error names (RFC 1035 §4.1.1, RFC 2136 §2.2, RFC 8945 §3). */
export const RCODES: Readonly<Record<number, string>> = {
  0: "NOERROR",
  1: "FORMERR",
  2: "SERVFAIL",
  3: "NXDOMAIN",
  4: "NOTIMP",
  5: "REFUSED",
  6: "YXDOMAIN",
  7: "YXRRSET",
  8: "NXRRSET",
  9: "NOTAUTH",
  10: "NOTZONE",
  16: "BADSIG",
  17: "BADKEY",
  18: "BADTIME",
  22: "BADTRUNC",
};

/** A growable byte buffer with the big-endian writes DNS uses. */
class Writer {
  #bytes = new Uint8Array(512);
  length = 0;

  #room(n: number): void {
    if (this.length + n <= this.#bytes.length) return;
    const grown = new Uint8Array(Math.max(this.#bytes.length * 2, this.length + n));
    grown.set(this.#bytes.subarray(0, this.length));
    this.#bytes = grown;
  }
  u8(value: number): void {
    this.#room(1);
    this.#bytes[this.length++] = value;
  }
  u16(value: number): void {
    this.u8(value >>> 8);
    this.u8(value & 0xff);
  }
  u32(value: number): void {
    this.u16(value >>> 16);
    this.u16(value & 0xffff);
  }
  u48(value: number): void {
    this.u16(Math.floor(value / 2 ** 32));
    this.u32(value >>> 0);
  }
  bytes(data: Uint8Array): void {
    this.#room(data.length);
    this.#bytes.set(data, this.length);
    this.length += data.length;
  }
  /** A domain name, uncompressed, lowercase (the canonical form TSIG signs, RFC 8945 §4.3.3). */
  name(name: string): void {
    for (const label of name.toLowerCase().replace(/\.$/, "").split(".").filter((l) => l !== "")) {
      const encoded = new TextEncoder().encode(label);
      if (encoded.length > 63) throw new TypeError(`the DNS label "${label}" is longer than 63 bytes`);
      this.u8(encoded.length);
      this.bytes(encoded);
    }
    this.u8(0);
  }
  result(): Uint8Array {
    return this.#bytes.slice(0, this.length);
  }
}

/** TXT RDATA (RFC 1035 §3.3.14): the value as character-strings of at most 255 bytes. */
function txtRdata(value: string): Uint8Array {
  const bytes = new TextEncoder().encode(value);
  const out = new Writer();
  let at = 0;
  do {
    const chunk = bytes.subarray(at, at + 255);
    out.u8(chunk.length);
    out.bytes(chunk);
    at += 255;
  } while (at < bytes.length);
  return out.result();
}

/** Record types a one-question query asks for (RFC 1035 §3.2.2, RFC 3596, RFC 8659). */
const QUERY_TYPES = { A: 1, NS: 2, AAAA: 28, CAA: 257 } as const;
export type QueryType = keyof typeof QUERY_TYPES;

/** A standard query (RFC 1035 §4.1.1-4.1.2): one question for `name`/`type`, class IN, recursion desired. */
export function encodeQuery(id: number, name: string, type: QueryType): Uint8Array {
  const w = new Writer();
  w.u16(id);
  w.u16(0x0100); // RD
  w.u16(1); // QDCOUNT
  w.u16(0);
  w.u16(0);
  w.u16(0);
  w.name(name);
  w.u16(QUERY_TYPES[type]);
  w.u16(CLASS_IN);
  return w.result();
}

/** The unsigned UPDATE message for `zone` with `changes` (RFC 2136 §2): header, zone section, updates. */
export function encodeUpdate(id: number, zone: string, changes: readonly TxtChange[]): Uint8Array {
  const w = new Writer();
  w.u16(id);
  w.u16(OPCODE_UPDATE << 11);
  w.u16(1); // ZOCOUNT
  w.u16(0); // PRCOUNT
  w.u16(changes.length); // UPCOUNT
  w.u16(0); // ADCOUNT (the TSIG is added by signUpdate)
  w.name(zone);
  w.u16(TYPE_SOA);
  w.u16(CLASS_IN);
  for (const change of changes) {
    w.name(change.name);
    w.u16(TYPE_TXT);
    // §2.5.1 adds with the zone's class; §2.5.4 deletes one RR with class NONE; §2.5.2 an RRset with ANY.
    w.u16(change.op === "add" ? CLASS_IN : change.op === "delete" ? CLASS_NONE : CLASS_ANY);
    w.u32(change.op === "add" ? change.ttl : 0);
    const rdata = change.op === "delete-all" ? new Uint8Array(0) : txtRdata(change.value);
    w.u16(rdata.length);
    w.bytes(rdata);
  }
  return w.result();
}

/** The TSIG variables (RFC 8945 §4.3.3) that follow the message in the MAC's input. */
function tsigVariables(
  key: TsigKey,
  timeSigned: number,
  error: number,
  other: Uint8Array,
  fudge = FUDGE_S,
): Uint8Array {
  const w = new Writer();
  w.name(key.name);
  w.u16(CLASS_ANY);
  w.u32(0);
  w.name(key.algorithm);
  w.u48(timeSigned);
  w.u16(fudge);
  w.u16(error);
  w.u16(other.length);
  w.bytes(other);
  return w.result();
}

async function hmac(key: TsigKey, parts: Uint8Array[]): Promise<Uint8Array> {
  const cryptoKey = await crypto.subtle.importKey(
    "raw",
    new Uint8Array(key.secret),
    { name: "HMAC", hash: TSIG_ALGORITHMS[key.algorithm]! },
    false,
    ["sign"],
  );
  const total = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    total.set(part, at);
    at += part.length;
  }
  return new Uint8Array(await crypto.subtle.sign("HMAC", cryptoKey, total));
}

/** A signed message and the MAC it carries (needed to check the answer, §4.3.1). */
export interface SignedMessage {
  bytes: Uint8Array;
  mac: Uint8Array;
}

/** `message` with a TSIG record appended (RFC 8945 §4.2-4.3), signed at `nowS` (seconds since the epoch). */
export async function signMessage(message: Uint8Array, key: TsigKey, nowS: number): Promise<SignedMessage> {
  const mac = await hmac(key, [message, tsigVariables(key, nowS, 0, new Uint8Array(0))]);
  const w = new Writer();
  w.bytes(message);
  w.name(key.name);
  w.u16(TYPE_TSIG);
  w.u16(CLASS_ANY);
  w.u32(0);
  const rdata = new Writer();
  rdata.name(key.algorithm);
  rdata.u48(nowS);
  rdata.u16(FUDGE_S);
  rdata.u16(mac.length);
  rdata.bytes(mac);
  rdata.u16((message[0]! << 8) | message[1]!); // Original ID
  rdata.u16(0); // Error
  rdata.u16(0); // Other Len
  const rdataBytes = rdata.result();
  w.u16(rdataBytes.length);
  w.bytes(rdataBytes);
  const bytes = w.result();
  const additional = (bytes[10]! << 8) | bytes[11]!;
  bytes[10] = (additional + 1) >>> 8;
  bytes[11] = (additional + 1) & 0xff;
  return { bytes, mac };
}

/** What the server answered: its RCODE, and its TSIG's error, MAC check and time, when it signed. */
export interface UpdateAnswer {
  id: number;
  rcode: number;
  /** null when the answer carries no TSIG (BADKEY and BADSIG answers are unsigned, RFC 8945 §5.3.2). */
  tsig: { error: number; verified: boolean; timeSigned: number; fudge: number } | null;
}

/** Reads a name at `at` (following compression pointers, RFC 1035 §4.1.4); returns where it ends. */
function skipName(bytes: Uint8Array, at: number): { end: number; name: string } {
  const labels: string[] = [];
  let end = -1;
  for (let hops = 0; hops < 64; hops++) {
    const length = bytes[at];
    if (length === undefined) throw new RangeError("a name runs past the end of the answer");
    if (length === 0) {
      if (end < 0) end = at + 1;
      return { end, name: labels.join(".") };
    }
    if ((length & 0xc0) === 0xc0) {
      if (end < 0) end = at + 2;
      at = ((length & 0x3f) << 8) | (bytes[at + 1] ?? 0);
      continue;
    }
    labels.push(new TextDecoder().decode(bytes.subarray(at + 1, at + 1 + length)));
    at += 1 + length;
  }
  throw new RangeError("a name in the answer loops");
}

/**
 * Parses the server's answer to `request` and checks its TSIG with `key` (RFC 8945 §5.3: the MAC covers the
 * request's MAC, the answer without its TSIG and the TSIG variables). Throws a RangeError for bytes that are
 * not a DNS answer.
 */
export async function readAnswer(
  bytes: Uint8Array,
  request: SignedMessage,
  key: TsigKey,
): Promise<UpdateAnswer> {
  if (bytes.length < 12) throw new RangeError(`a ${bytes.length}-byte answer is shorter than a DNS header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const id = view.getUint16(0);
  const rcode = bytes[3]! & 0x0f;
  const counts = [view.getUint16(4), view.getUint16(6), view.getUint16(8), view.getUint16(10)];
  let at = 12;
  for (let i = 0; i < counts[0]!; i++) at = skipName(bytes, at).end + 4;
  for (let i = 0; i < counts[1]! + counts[2]!; i++) at = skipRecord(bytes, at);
  for (let i = 0; i < counts[3]!; i++) {
    const start = at;
    const { end } = skipName(bytes, at);
    const type = view.getUint16(end);
    const next = skipRecord(bytes, at);
    if (type !== TYPE_TSIG) {
      at = next;
      continue;
    }
    let p = end + 10; // type, class, TTL, RDLENGTH
    p = skipName(bytes, p).end;
    const timeSigned = view.getUint16(p) * 2 ** 32 + view.getUint32(p + 2);
    const fudge = view.getUint16(p + 6);
    const macSize = view.getUint16(p + 8);
    if (p + 16 + macSize > bytes.length) {
      throw new RangeError("the TSIG record runs past the end of the answer");
    }
    const mac = bytes.subarray(p + 10, p + 10 + macSize);
    p += 10 + macSize;
    const error = view.getUint16(p + 2);
    const other = bytes.subarray(p + 6, p + 6 + view.getUint16(p + 4));
    let verified = false;
    if (macSize > 0) {
      const unsigned = bytes.slice(0, start);
      unsigned[10] = (counts[3]! - 1) >>> 8; // ADCOUNT without the TSIG
      unsigned[11] = (counts[3]! - 1) & 0xff;
      unsigned[0] = request.bytes[0]!; // the original ID
      unsigned[1] = request.bytes[1]!;
      const prior = new Writer();
      prior.u16(request.mac.length);
      prior.bytes(request.mac);
      const expected = await hmac(key, [
        prior.result(),
        unsigned,
        // The answer's own variables, its fudge included (RFC 8945 §5.3), not the request's.
        tsigVariables(key, timeSigned, error, other, fudge),
      ]);
      verified = expected.length === mac.length && timingSafeEqual(expected, mac);
    }
    return { id, rcode, tsig: { error, verified, timeSigned, fudge } };
  }
  return { id, rcode, tsig: null };
}

function skipRecord(bytes: Uint8Array, at: number): number {
  const { end } = skipName(bytes, at);
  const length = ((bytes[end + 8] ?? 0) << 8) | (bytes[end + 9] ?? 0);
  const next = end + 10 + length;
  if (next > bytes.length) throw new RangeError("a record runs past the end of the answer");
  return next;
}

function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a[i]! ^ b[i]!;
  return difference === 0;
}
