// The floor of the benchmark's ACME rows: a bare Deno TLS server, as bench/floor_proxy.ts idles, that runs
// jobs in fresh Web Workers one after another when told to (a SIGUSR1 each), each doing at Deno's level what
// an ACME order does (bench/floor_acme_job.ts), and after each the memory work nexo does after its jobs (a
// memory-reducing GC a second later, a SIGUSR2 trim a second after that: lib/shrink_heap.ts). nexo's "after
// issuance" rows read against it: what Deno keeps after running such jobs at all, and what nexo adds.
// Usage: deno run -A --unstable-worker-options <nexo's flags> bench/floor_acme.ts PORT CERT_FILE KEY_FILE
//          DIRECTORY_URL CA_FILE; then a SIGUSR1 per job, each answered by a JSON line {"msg":"job done","jobs":N}
//          on stdout once its worker is gone (a failed job: {"msg":"job failed","error":...}).

const [port, certFile, keyFile, directoryUrl, caFile] = Deno.args;
if ([port, certFile, keyFile, directoryUrl, caFile].includes(undefined)) {
  throw new Error("usage: floor_acme.ts PORT CERT_FILE KEY_FILE DIRECTORY_URL CA_FILE");
}
const caPem = await Deno.readTextFile(caFile!);
Deno.serve({
  hostname: "127.0.0.1",
  port: Number(port),
  cert: await Deno.readTextFile(certFile!),
  key: await Deno.readTextFile(keyFile!),
  onListen: () => {},
}, () => new Response("hello world\n"));

const gc = (globalThis as { gc?: (options: { type: "major"; flavor: "last-resort" }) => void }).gc;
Deno.addSignalListener("SIGUSR2", () => {}); // DENO_USR2_MEMORY_TRIM's signal must not end the process
const shrinkLater = () => {
  setTimeout(() => {
    gc?.({ type: "major", flavor: "last-resort" });
    setTimeout(() => Deno.kill(Deno.pid, "SIGUSR2"), 1000);
  }, 1000);
};

async function runJob(): Promise<void> {
  // Like nexo's worker: a module worker with its own, narrowed permissions.
  const worker = new Worker(new URL("./floor_acme_job.ts", import.meta.url), {
    type: "module",
    deno: { permissions: { net: true, read: false, write: false, env: false, run: false, ffi: false } },
  } as WorkerOptions);
  try {
    await new Promise<void>((resolve, reject) => {
      worker.onmessage = () => resolve();
      worker.onerror = (event) => {
        event.preventDefault();
        reject(new Error(`floor job failed: ${event.message}`));
      };
      worker.postMessage({ directoryUrl, caPem });
    });
  } finally {
    worker.terminate();
  }
}

// nexo does the same work a second after it starts (lib/server/run.ts), so both idle figures include it.
shrinkLater();

let jobs = 0;
let queue = Promise.resolve();
const report = (line: Record<string, unknown>) =>
  Deno.stdout.write(new TextEncoder().encode(JSON.stringify(line) + "\n"));
Deno.addSignalListener("SIGUSR1", () => {
  queue = queue.then(async () => {
    try {
      await runJob();
      await report({ msg: "job done", jobs: ++jobs });
    } catch (error) {
      await report({ msg: "job failed", error: String(error) });
    }
    shrinkLater();
  });
});
