// End-to-end: a config file holding the Cloudflare API token that other users can read is reported in the
// log at start and after each reload (file, mode, the chmod that fixes it), and the token never is.

import assert from "node:assert/strict";
import { type NexoProcess, startNexo } from "./harness.ts";

const TOKEN = "cf-e2e-secret-token-7f3a9c2e51d04b68";
const BODY = `
cloudflare:
  api_token: ${TOKEN}
proxies:
  "app.test":
    redirect: example.org
`;
const WARNING = "config file readable by others";

/** Starts nexo on a config file that has `mode` from the start (set before nexo reads it). */
async function startWithMode(mode: number): Promise<{ nexo: NexoProcess; file: string }> {
  const dir = await Deno.makeTempDir({ prefix: "nexo-e2e-mode-" });
  const file = `${dir}/config.yaml`;
  // The harness rewrites this file; an existing file keeps its mode, whatever the umask.
  await Deno.writeTextFile(file, "");
  await Deno.chmod(file, mode);
  try {
    return { nexo: await startNexo(BODY, { dir }), file };
  } catch (error) {
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
}

function warnings(nexo: NexoProcess): Array<Record<string, unknown>> {
  return nexo.logs.filter((line) => line.msg === WARNING);
}

/** Edits the config (a new route) and waits for the reload it causes. */
async function editAndReload(nexo: NexoProcess, file: string, host: string): Promise<void> {
  await Deno.writeTextFile(file, `  "${host}":\n    redirect: example.org\n`, { append: true });
  await nexo.waitForLog((line) => line.msg === "config reloaded" && line.added === host);
}

Deno.test("nexo warns at start and on reload when the config holding the API token is readable by others", async () => {
  const { nexo, file } = await startWithMode(0o644);
  try {
    const [atStart] = warnings(nexo);
    assert.deepEqual(
      { ...atStart, time: undefined },
      {
        time: undefined,
        level: "warn",
        msg: WARNING,
        file,
        mode: "0644",
        holds: "cloudflare.api_token",
        fix: `chmod 600 ${file}`,
      },
    );

    // Fixed: a reload finds nothing to say.
    await Deno.chmod(file, 0o600);
    await editAndReload(nexo, file, "b.test");
    // Opened to the group again, by an editor or a deploy: the next reload says so again.
    await Deno.chmod(file, 0o640);
    await editAndReload(nexo, file, "c.test");
    const again = await nexo.waitForLog((line) => line.msg === WARNING && line.mode === "0640");
    assert.equal(again.file, file);
    assert.equal(warnings(nexo).length, 2, "one warning at start, none after the fix, one after 0640");
    assert.ok(!nexo.output().includes(TOKEN), "the token never reaches the log");
  } finally {
    await nexo.stop();
    await Deno.remove(nexo.dir, { recursive: true });
  }
});

Deno.test("nexo says nothing about a config holding the API token that only its owner can read", async () => {
  const { nexo } = await startWithMode(0o600);
  try {
    await nexo.waitForLog((line) => line.msg === "listening");
    assert.deepEqual(warnings(nexo), []);
    assert.ok(!nexo.output().includes(TOKEN));
  } finally {
    await nexo.stop();
    await Deno.remove(nexo.dir, { recursive: true });
  }
});
