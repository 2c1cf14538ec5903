// The floor of the benchmark's ACME rows: a bare Deno TLS server, as bench/floor_proxy.ts idles, that runs
// jobs in fresh Web Workers one after another when told to (a SIGUSR1 each), each doing at Deno's level what
// an ACME order does (bench/floor_acme_job.ts). It stores what a job sends back with the functions nexo
// stores a certificate with (lib/storage/atomic_write.ts), and runs nexo's memory work after a job
// (lib/shrink_heap.ts: a memory-reducing GC a second later, a SIGUSR2 trim a second after that).
// nexo's "after issuance" rows read against it: what Deno keeps after running such jobs at all.
// Usage: deno run -A --unstable-worker-options <nexo's flags> bench/floor_acme.ts PORT CERT_FILE KEY_FILE
//          DIRECTORY_URL CA_FILE STORE_DIR; then a SIGUSR1 per job, each answered on stdout by a JSON line
//          {"msg":"job done","jobs":N} once its worker is gone and its result stored (or "job failed").

import { shrinkHeapSoon } from "../lib/shrink_heap.ts";
import { syncDir, writeAndRename } from "../lib/storage/atomic_write.ts";

if (Deno.args.length !== 6) {
  throw new Error("usage: floor_acme.ts PORT CERT_FILE KEY_FILE DIRECTORY_URL CA_FILE STORE_DIR");
}
const [port, certFile, keyFile, directoryUrl, caFile, storeDir] = Deno.args as [
  string,
  string,
  string,
  string,
  string,
  string,
];
const caPem = await Deno.readTextFile(caFile);
Deno.serve({
  hostname: "127.0.0.1",
  port: Number(port),
  cert: await Deno.readTextFile(certFile),
  key: await Deno.readTextFile(keyFile),
  onListen: () => {},
}, () => new Response("hello world\n"));

async function runJob(): Promise<void> {
  // Like nexo's worker: a module worker with its own, narrowed permissions.
  const worker = new Worker(new URL("./floor_acme_job.ts", import.meta.url), {
    type: "module",
    deno: { permissions: { net: true, read: false, write: false, env: false, run: false, ffi: false } },
  } as WorkerOptions);
  let key: ArrayBuffer;
  try {
    key = await new Promise<ArrayBuffer>((resolve, reject) => {
      worker.onmessage = (event: MessageEvent<ArrayBuffer>) => resolve(event.data);
      worker.onerror = (event) => {
        event.preventDefault();
        reject(new Error(`floor job failed: ${event.message}`));
      };
      worker.postMessage({ directoryUrl, caPem });
    });
  } finally {
    worker.terminate();
  }
  // Stored as nexo stores a certificate, with the same functions: each file atomically, then the directory.
  const keyPem = `-----BEGIN PRIVATE KEY-----\n${
    new Uint8Array(key).toBase64()
  }\n-----END PRIVATE KEY-----\n`;
  await writeAndRename(`${storeDir}/privkey.pem`, new TextEncoder().encode(keyPem), 0o600);
  // A certificate chain's size; what it says does not matter here.
  await writeAndRename(`${storeDir}/fullchain.pem`, new TextEncoder().encode(caPem), 0o644);
  await syncDir(storeDir);
}

// nexo does the same work a second after it starts (lib/server/run.ts), so both idle figures include it.
shrinkHeapSoon();

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
    shrinkHeapSoon();
  });
});
