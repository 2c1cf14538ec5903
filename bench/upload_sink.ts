// The end of the upload path: a plain-HTTP server inside the bench process that reads every request body to
// the end, counts it and only then answers 204 with the count. The nginx upstream passes `/upload` here
// unbuffered (servers.ts says why nginx cannot be the sink itself). It keeps nothing it reads.

/** The response header carrying the number of body bytes the sink read. */
export const RECEIVED_HEADER = "x-received-bytes";

/** A running sink; `url` is its base URL (`http://127.0.0.1:port`). */
export interface UploadSink {
  url: string;
  stop(): Promise<void>;
}

/** Starts the sink on a free loopback port. */
export function startUploadSink(): UploadSink {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    let received = 0;
    if (request.body) { for await (const chunk of request.body) received += chunk.byteLength; }
    return new Response(null, { status: 204, headers: { [RECEIVED_HEADER]: String(received) } });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    async stop() {
      await server.shutdown();
    },
  };
}
