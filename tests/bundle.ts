// The form nexo runs in outside its own unit tests: the bundle `deno task build` writes to dist/ (deno.json
// holds its flags; the tasks, the installed launcher, the compiled binary and the benchmark all run it). The
// end-to-end tests run it too, so that what they check is what ships.

const ROOT = new URL("..", import.meta.url).pathname;

let built: Promise<string> | null = null;

/**
 * Builds the bundle once per process (`deno task build`, about half a second) and resolves with the path of
 * dist/main.js. A build that fails throws with its output: the sources do not bundle.
 */
export function bundledMain(): Promise<string> {
  built ??= (async () => {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["task", "--quiet", "build"],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!output.success) {
      const text = new TextDecoder().decode(output.stderr) + new TextDecoder().decode(output.stdout);
      throw new Error(`deno task build failed (exit ${output.code}):\n${text}`);
    }
    return `${ROOT}dist/main.js`;
  })();
  return built;
}
