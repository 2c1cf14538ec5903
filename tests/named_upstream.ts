// An upstream server process for the load-balancing tests: it answers with its own name, so a test can tell
// which upstream served a request, and it can be killed and started again on the same port like a real app.
//
//   deno run --allow-net tests/named_upstream.ts NAME PORT [FLAKY] [WORK_MS]
//
// GET /            its name
// GET /work        its name after WORK_MS ms (default 0): one upstream can be slower than the others
// ANY /flaky       503 when NAME is in the comma-separated FLAKY list, else its name
// GET /healthz     200 "ok"
// GET /stats       JSON: "METHOD /path" -> requests seen (the health checks' included)
// Bodies are read whole before answering, so a streamed upload is taken in full.

const [name = "upstream", portText = "0", flaky = "", workMs = "0"] = Deno.args;
const seen: Record<string, number> = {};

Deno.serve(
  {
    hostname: "127.0.0.1",
    port: Number(portText),
    onListen: () => Deno.stdout.writeSync(new TextEncoder().encode("ready\n")),
  },
  async (req) => {
    const url = new URL(req.url);
    const key = `${req.method} ${url.pathname}`;
    seen[key] = (seen[key] ?? 0) + 1;
    if (req.body !== null) await req.arrayBuffer();
    switch (url.pathname) {
      case "/work":
        await new Promise((resolve) => setTimeout(resolve, Number(workMs)));
        return new Response(name);
      case "/flaky":
        return flaky.split(",").includes(name) ? new Response("busy", { status: 503 }) : new Response(name);
      case "/healthz":
        return new Response("ok");
      case "/stats":
        return Response.json(seen);
      default:
        return new Response(name);
    }
  },
);
