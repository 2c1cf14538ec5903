// WebSocket bytes for tests that speak to nexo over a TLS socket of their own (Deno's WebSocket client can
// neither pick the SNI name nor misbehave on purpose): the opening handshake, client text frames, and
// reading the answer's head and a server text frame.

/** The fixed key of RFC 6455 §1.3's example; nexo checks only its form. */
const KEY = "dGhlIHNhbXBsZSBub25jZQ==";

/** An opening handshake request (RFC 6455 §4.1) for `host` and `path`, with optional extra header lines. */
export function upgradeRequest(host: string, path = "/", extraHeaders: string[] = []): Uint8Array {
  return new TextEncoder().encode(
    `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n` +
      extraHeaders.map((line) => `${line}\r\n`).join("") + "\r\n",
  );
}

/** A client text frame (RFC 6455 §5.2), masked as clients must; for payloads under 126 bytes. */
export function maskedTextFrame(text: string): Uint8Array {
  const payload = new TextEncoder().encode(text);
  if (payload.length > 125) throw new Error("test frames are short");
  const mask = crypto.getRandomValues(new Uint8Array(4));
  const frame = new Uint8Array(2 + 4 + payload.length);
  frame[0] = 0x81;
  frame[1] = 0x80 | payload.length;
  frame.set(mask, 2);
  for (let i = 0; i < payload.length; i++) frame[6 + i] = payload[i]! ^ mask[i % 4]!;
  return frame;
}

/** Reads a response head from `conn`: the head's text, and the bytes after it. */
export async function readHead(conn: Deno.Conn): Promise<{ head: string; rest: Uint8Array }> {
  let received = new Uint8Array(0);
  const buffer = new Uint8Array(4096);
  let end = -1;
  while (end === -1) {
    const n = await conn.read(buffer);
    if (n === null) break;
    received = new Uint8Array([...received, ...buffer.subarray(0, n)]);
    end = new TextDecoder().decode(received).indexOf("\r\n\r\n");
  }
  const text = new TextDecoder().decode(received);
  return { head: end === -1 ? text : text.slice(0, end), rest: received.subarray(end + 4) };
}

/** The payload of the next server text frame (unmasked, under 126 bytes), after `pending` bytes. */
export async function readTextFrame(conn: Deno.Conn, pending: Uint8Array): Promise<string> {
  let bytes = pending;
  const buffer = new Uint8Array(4096);
  while (bytes.length < 2 || bytes.length < 2 + (bytes[1]! & 0x7f)) {
    const n = await conn.read(buffer);
    if (n === null) throw new Error("closed before a frame");
    bytes = new Uint8Array([...bytes, ...buffer.subarray(0, n)]);
  }
  return new TextDecoder().decode(bytes.subarray(2, 2 + (bytes[1]! & 0x7f)));
}
