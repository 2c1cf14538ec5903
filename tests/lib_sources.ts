// The lines of nexo's own code (lib/, tests and testdata left out) that break a rule kept across every file:
// for unit tests that forbid a call outside the one module meant to make it (lib/timers_test.ts,
// lib/iso_time_test.ts). Comments are not code: lines starting with // or * are skipped.

const LIB = new URL("../lib/", import.meta.url).pathname;

/**
 * "lib/path.ts:line: text" for every code line of lib/ that `breaks` says breaks the rule, in files other than
 * `allowed` (paths relative to lib/, e.g. "timers.ts").
 */
export async function findInLib(breaks: (line: string) => boolean, allowed: string[]): Promise<string[]> {
  const found: string[] = [];
  const visit = async (dir: string) => {
    for await (const entry of Deno.readDir(dir)) {
      const path = `${dir}${entry.name}`;
      if (entry.isDirectory && entry.name !== "testdata") await visit(`${path}/`);
      if (!entry.isFile || !entry.name.endsWith(".ts") || entry.name.endsWith("_test.ts")) continue;
      const relative = path.slice(LIB.length);
      if (allowed.includes(relative)) continue;
      (await Deno.readTextFile(path)).split("\n").forEach((line, index) => {
        if (!/^\s*(\/\/|\*)/.test(line) && breaks(line)) {
          found.push(`lib/${relative}:${index + 1}: ${line.trim()}`);
        }
      });
    }
  };
  await visit(LIB);
  return found.sort();
}
