// The floor of the benchmark's ACME rows: a bare Deno TLS server, as bench/floor_proxy.ts idles, that runs
// jobs in fresh Web Workers one after another when told to (a SIGUSR1 each), each doing at Deno's level what
// an ACME order does (bench/floor_acme_job.ts). It stores what a job sends back as nexo stores a certificate
// (a temp file written and fsynced, renamed, the directory fsynced), and a second later does the memory work
// nexo does after its jobs (a memory-reducing GC, a SIGUSR2 trim a second after that: lib/shrink_heap.ts).
// nexo's "after issuance" rows read against it: what Deno keeps after running such jobs at all.
// Usage: deno run -A --unstable-worker-options <nexo's flags> bench/floor_acme.ts PORT CERT_FILE KEY_FILE
//          DIRECTORY_URL CA_FILE STORE_DIR; then a SIGUSR1 per job, each answered on stdout by a JSON line
//          {"msg":"job done","jobs":N} once its worker is gone and its result stored (or "job failed").

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

const gc = (globalThis as { gc?: (options: { type: "major"; flavor: "last-resort" }) => void }).gc;
Deno.addSignalListener("SIGUSR2", () => {}); // DENO_USR2_MEMORY_TRIM's signal must not end the process
const shrinkLater = () => {
  setTimeout(() => {
    gc?.({ type: "major", flavor: "last-resort" });
    setTimeout(() => Deno.kill(Deno.pid, "SIGUSR2"), 1000);
  }, 1000);
};

/** Writes `text` to `name` in the store so that a crash never leaves half of it (lib/storage/atomic_write.ts). */
async function store(name: string, text: string): Promise<void> {
  const temp = `${storeDir}/.${name}.tmp`;
  const file = await Deno.open(temp, { write: true, createNew: true, mode: 0o600 });
  try {
    await file.write(new TextEncoder().encode(text));
    await file.sync();
  } finally {
    file.close();
  }
  await Deno.rename(temp, `${storeDir}/${name}`);
  const dir = await Deno.open(storeDir, { read: true });
  try {
    await dir.sync();
  } finally {
    dir.close();
  }
}

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
  const base64 = new Uint8Array(key).toBase64();
  await store("privkey.pem", `-----BEGIN PRIVATE KEY-----\n${base64}\n-----END PRIVATE KEY-----\n`);
  await store("fullchain.pem", caPem); // a certificate chain's size; what it says does not matter here
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
