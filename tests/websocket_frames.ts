// WebSocket bytes for tests that speak to nexo over a TLS socket of their own (Deno's WebSocket client can
// neither pick the SNI name nor misbehave on purpose): the opening handshake and client text frames.

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
