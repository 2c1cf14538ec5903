// A second process for file_storage_test.ts: it uses FileStorage from outside the test process, so that
// tests can crash it (SIGKILL, a file-size limit) and hold locks against it. Not part of nexo.
//
//   store <root> <key> <bytes> [--survive-fsize]   stores <bytes> x "n"; prints "stored" or the error message
//   hold-lock <root> <name> <stale_ms> <refresh_ms>  takes the lock, prints "locked", releases on stdin EOF

import { FileStorage } from "../file_storage.ts";

function say(line: string): void {
  Deno.stdout.writeSync(new TextEncoder().encode(line + "\n"));
}

const [command, root = "", name = "", ...rest] = Deno.args;

if (command === "store") {
  // With a listener, exceeding the file-size limit makes write() fail with EFBIG instead of killing us.
  if (rest.includes("--survive-fsize")) {
    Deno.addSignalListener("SIGXFSZ", () => {});
    await new Promise((resolve) => setTimeout(resolve, 0)); // let the runtime install the handler
  }
  try {
    await new FileStorage(root).store(name, "n".repeat(Number(rest[0])));
    say("stored");
  } catch (err) {
    say(JSON.stringify({ name: (err as Error).name, message: (err as Error).message }));
  }
  Deno.exit(0);
} else if (command === "hold-lock") {
  const storage = new FileStorage(root, {
    lockTimings: { staleMs: Number(rest[0]), refreshMs: Number(rest[1]), pollMs: 10 },
  });
  const lock = await storage.lock(name);
  say("locked");
  for await (const _ of Deno.stdin.readable) {
    // wait for EOF
  }
  await lock.release();
  say("released");
} else {
  say(`storage_child.ts: unknown command ${JSON.stringify(command)}`);
  Deno.exit(2);
}
