// Many idle keep-alive connections held open from the bench process: each is a verified TLS connection that
// has made one HTTP/1.1 request and read its answer, then sits idle, as browsers leave theirs. What is
// measured while they are open is the caller's business.

/** Options for `withIdleConnections`. */
export interface IdleConnectionsOptions {
  count: number;
  /** Connections opened at once; the next batch starts when one is done (no SYN storm, no accept backlog). */
  batch: number;
  /** PEM of the root the server's certificate chains to. */
  caPem: string;
}

const ENCODER = new TextEncoder();
const DECODER = new TextDecoder();

/**
 * Opens `options.count` TLS connections to `url`'s port on 127.0.0.1 (SNI and certificate check against
 * `url`'s host), sends `GET <path> HTTP/1.1` on each and reads a 200, then runs `whileOpen` and closes them
 * all, also when something fails. Throws naming the connection that could not connect or got no 200.
 */
export async function withIdleConnections<T>(
  url: string,
  options: IdleConnectionsOptions,
  whileOpen: () => Promise<T>,
): Promise<T> {
  const target = new URL(url);
  const request = ENCODER.encode(
    `GET ${target.pathname} HTTP/1.1\r\nHost: ${target.host}\r\nUser-Agent: nexo-bench\r\n\r\n`,
  );
  // Deno's connectTls takes the SNI name only through this internal (as tests/harness.ts does): connecting
  // by the name "localhost" could resolve to ::1, where no proxy listens.
  // deno-lint-ignore no-explicit-any
  const serverNameSymbol = (Deno as any)[(Deno as any).internal].serverNameSymbol;
  const conns: Deno.TlsConn[] = [];
  try {
    for (let start = 0; start < options.count; start += options.batch) {
      const size = Math.min(options.batch, options.count - start);
      await Promise.all(Array.from({ length: size }, async (_, i) => {
        const conn = await Deno.connectTls({
          hostname: "127.0.0.1",
          port: Number(target.port),
          caCerts: [options.caPem],
          alpnProtocols: ["http/1.1"],
          [serverNameSymbol]: target.hostname,
        } as Deno.ConnectTlsOptions);
        conns.push(conn);
        await conn.write(request);
        await readResponse(conn, `connection ${start + i + 1} of ${options.count} to ${url}`);
      }));
    }
    return await whileOpen();
  } finally {
    for (const conn of conns) {
      try {
        conn.close();
      } catch {
        // Already closed by the server.
      }
    }
  }
}

/** Reads one complete response (Content-Length or chunked) and throws unless its status is 200. */
async function readResponse(conn: Deno.Conn, what: string): Promise<void> {
  const buffer = new Uint8Array(16 * 1024);
  let text = "";
  while (true) {
    const n = await conn.read(buffer);
    if (n === null) {
      throw new Error(`${what}: closed before a complete response (got ${JSON.stringify(text)})`);
    }
    text += DECODER.decode(buffer.subarray(0, n));
    const headEnd = text.indexOf("\r\n\r\n");
    if (headEnd < 0) continue;
    const head = text.slice(0, headEnd);
    const status = /^HTTP\/1\.1 (\d{3})/.exec(head)?.[1];
    if (status !== "200") {
      throw new Error(`${what}: expected 200, got ${JSON.stringify(head.split("\r\n")[0])}`);
    }
    const length = /^content-length:\s*(\d+)/im.exec(head)?.[1];
    const body = text.slice(headEnd + 4);
    // The body is ASCII here, so string length is byte length.
    if (length !== undefined ? body.length >= Number(length) : body.endsWith("0\r\n\r\n")) return;
  }
}
