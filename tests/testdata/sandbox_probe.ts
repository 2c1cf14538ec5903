// Run by tests/permissions_test.ts with exactly nexo's documented permission flags: tries what a compromised
// nexo would want to do outside its folder and prints one JSON object naming, for each attempt, the error
// class it met ("ok" if it was allowed). Not part of nexo.

const [allowedDir = "", outsideDir = ""] = Deno.args;

async function attempt(fn: () => Promise<unknown> | unknown): Promise<string> {
  try {
    await fn();
    return "ok";
  } catch (error) {
    return (error as Error).name;
  }
}

const results = {
  writeInside: await attempt(() => Deno.writeTextFile(`${allowedDir}/probe.txt`, "inside")),
  writeOutside: await attempt(() => Deno.writeTextFile(`${outsideDir}/escaped.txt`, "outside")),
  readUnrelated: await attempt(() => Deno.readTextFile("/etc/hostname")),
  readOutsideDir: await attempt(() => Deno.readDir(outsideDir)[Symbol.asyncIterator]().next()),
  subprocess: await attempt(() => new Deno.Command("true").output()),
  ffi: await attempt(() => Deno.dlopen("libc.so.6", {})),
  envUnlisted: await attempt(() => Deno.env.get("PATH")),
};
Deno.stdout.writeSync(new TextEncoder().encode(JSON.stringify(results) + "\n"));
