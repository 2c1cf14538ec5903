import assert from "node:assert/strict";
import { enableListenerHandover } from "./listen.ts";

Deno.test("enableListenerHandover() turns the sysctl on, or says why it could not", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/tcp_migrate_req`;
    await Deno.writeTextFile(file, "1\n");
    assert.equal(await enableListenerHandover(file), "already on");
    await Deno.writeTextFile(file, "0\n");
    assert.equal(await enableListenerHandover(file), "enabled");
    assert.equal(await Deno.readTextFile(file), "1\n");
    assert.equal(await enableListenerHandover(`${dir}/absent`), "unavailable");
    // Off, and not writable: the fix is the sysctl.
    await Deno.writeTextFile(file, "0\n");
    const readOnly = await evalResult(`--allow-read=${dir}`, file);
    assert.equal(readOnly, "not permitted");
    // Not readable under nexo's flags: whether it is on is unknown, which is not "off". With the value at 1
    // this used to report "not permitted" and tell the user to run a sysctl that was already in effect.
    await Deno.writeTextFile(file, "1\n");
    assert.equal(await evalResult(`--allow-read=${dir}/elsewhere`, file), "not readable");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** enableListenerHandover(`file`) in a child Deno with `readFlag` and no write permission. */
async function evalResult(readFlag: string, file: string): Promise<string> {
  const module = new URL("./listen.ts", import.meta.url).href;
  const script = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(
      script,
      `const { enableListenerHandover } = await import(${JSON.stringify(module)});\n` +
        `console.log(await enableListenerHandover(${JSON.stringify(file)}));\n`,
    );
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-config", readFlag, script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(output.success, new TextDecoder().decode(output.stderr));
    return new TextDecoder().decode(output.stdout).trim();
  } finally {
    await Deno.remove(script);
  }
}
