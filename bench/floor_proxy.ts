// The benchmark's floor: the least a Deno 2.9.6 TLS reverse proxy can be. `Deno.serve` with one certificate,
// each request passed to the upstream with `fetch` (its own keep-alive pool) and the answer streamed back;
// nothing else: no routing, no header rewriting, no limits, no logging. Idle, it is a bare Deno TLS server
// (fetch's client is created on the first request). nexo's rows are read against it: what nexo costs above
// what Deno itself costs for the same job.
// Usage: deno run -A <nexo's V8 flags> bench/floor_proxy.ts PORT CERT_FILE KEY_FILE UPSTREAM_URL

const [port, certFile, keyFile, upstream] = Deno.args;
if (port === undefined || certFile === undefined || keyFile === undefined || upstream === undefined) {
  throw new Error("usage: floor_proxy.ts PORT CERT_FILE KEY_FILE UPSTREAM_URL");
}
const origin = new URL(upstream).origin;

Deno.serve({
  hostname: "127.0.0.1",
  port: Number(port),
  cert: await Deno.readTextFile(certFile),
  key: await Deno.readTextFile(keyFile),
  onListen: () => {},
}, async (req) => {
  const url = new URL(req.url);
  const answer = await fetch(origin + url.pathname + url.search, {
    method: req.method,
    headers: req.headers,
    body: req.body,
    redirect: "manual",
  });
  return new Response(answer.body, { status: answer.status, headers: answer.headers });
});
