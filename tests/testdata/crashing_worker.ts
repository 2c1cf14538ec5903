// A stand-in ACME worker for lib/acme/supervisor_test.ts: its first job crashes the worker (an uncaught
// error); later jobs report every certificate as failed and finish, as the real worker does on an error.

import { reportCrashes, type WorkerScope } from "../../lib/acme/worker_crash.ts";

// As the real worker does first thing: an uncaught error becomes a "crashed" message.
reportCrashes(self as unknown as WorkerScope);

const scope = self as unknown as {
  onmessage: ((e: MessageEvent) => void) | null;
  postMessage(m: unknown): void;
};

scope.onmessage = async (event) => {
  const { jobId, settings, certificates } = event.data;
  // In cert_dir: the worker may not write base_dir itself.
  const marker = `${settings.certDir}/crashed-once`;
  const crashedBefore = await Deno.stat(marker).then(() => true, () => false);
  if (!crashedBefore) {
    await Deno.mkdir(settings.certDir, { recursive: true });
    await Deno.writeTextFile(marker, "x");
    throw new Error("simulated worker crash");
  }
  for (const names of certificates) {
    scope.postMessage({
      type: "failed",
      jobId,
      names,
      error: "simulated failure",
      problemType: null,
      retryAfterMs: null,
      nextAttemptAt: Date.now() + 3_600_000,
      failures: 1,
    });
  }
  scope.postMessage({ type: "done", jobId });
};
