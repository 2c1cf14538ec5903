// The response code of one DNS query, asked over UDP by hand (RFC 1035 §4.1): Deno.resolveDns reports a
// SERVFAIL or REFUSED answer as NotFound "no records found", the same as an empty answer (measured on Deno
// 2.9.6 against challtestsrv's /set-servfail), but a CA refuses to issue on a failed CAA lookup
// (RFC 8659 §3) and issues on an empty one. Only the header is read; the records come from resolveDns.

import { encodeQuery, type QueryType } from "../dns/dns_update.ts";
import { startTimer, stopTimer } from "../timers.ts";

/**
 * The RCODE the server at `ipAddr`:`port` answers for `name`/`type`, or null when it does not answer within
 * `timeoutMs` or this process may not send UDP there.
 */
export async function queryRcode(
  name: string,
  type: QueryType,
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
  const timer = startTimer(() => socket.close(), timeoutMs);
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
    stopTimer(timer);
    try {
      socket.close();
    } catch {
      // closed by the timer
    }
  }
}
