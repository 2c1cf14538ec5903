// The response code of one DNS query, asked over UDP by hand (RFC 1035 §4.1): Deno.resolveDns reports a
// SERVFAIL or REFUSED answer as NotFound "no records found", the same as an empty answer (measured on Deno
// 2.9.6 against challtestsrv's /set-servfail), but a CA refuses to issue on a failed CAA lookup
// (RFC 8659 §3) and issues on an empty one. Only the header is read; the records come from resolveDns.

const TYPE_CODES = { A: 1, NS: 2, AAAA: 28, CAA: 257 } as const;

/** The question `name`/`type` (class IN) with recursion desired, under the id `id`. */
export function encodeQuery(id: number, name: string, type: keyof typeof TYPE_CODES): Uint8Array {
  const labels = name.replace(/\.$/, "").split(".").map((label) => new TextEncoder().encode(label));
  const size = 12 + labels.reduce((sum, label) => sum + 1 + label.length, 1) + 4;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  view.setUint16(0, id);
  view.setUint16(2, 0x0100); // RD
  view.setUint16(4, 1); // QDCOUNT
  let at = 12;
  for (const label of labels) {
    out[at++] = label.length;
    out.set(label, at);
    at += label.length;
  }
  out[at++] = 0;
  view.setUint16(at, TYPE_CODES[type]);
  view.setUint16(at + 2, 1); // IN
  return out;
}

/**
 * The RCODE the server at `ipAddr`:`port` answers for `name`/`type`, or null when it does not answer within
 * `timeoutMs` or this process may not send UDP there.
 */
export async function queryRcode(
  name: string,
  type: keyof typeof TYPE_CODES,
  server: { ipAddr: string; port: number },
  timeoutMs: number,
): Promise<number | null> {
  let socket: Deno.DatagramConn;
  try {
    socket = Deno.listenDatagram({
      transport: "udp",
      hostname: server.ipAddr.includes(":") ? "::" : "0.0.0.0",
      port: 0,
    });
  } catch {
    return null;
  }
  const id = crypto.getRandomValues(new Uint16Array(1))[0]!;
  const timer = setTimeout(() => socket.close(), timeoutMs);
  try {
    await socket.send(encodeQuery(id, name, type), {
      transport: "udp",
      hostname: server.ipAddr,
      port: server.port,
    });
    for (;;) {
      const [reply, from] = await socket.receive();
      const address = from as Deno.NetAddr;
      // Only the server's answer to this question counts (RFC 5452 §4: match the id and the source).
      if (reply.length < 12 || address.port !== server.port) continue;
      if (new DataView(reply.buffer, reply.byteOffset).getUint16(0) !== id) continue;
      return reply[3]! & 0x0f;
    }
  } catch {
    return null;
  } finally {
    clearTimeout(timer);
    try {
      socket.close();
    } catch {
      // closed by the timer
    }
  }
}
