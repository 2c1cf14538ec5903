// Runs inside a Worker started with nexo's ACME worker permissions and reports what each forbidden action did.

const scope = self as unknown as {
  onmessage: ((e: MessageEvent) => void) | null;
  postMessage(m: unknown): void;
};

async function attempt(action: () => Promise<unknown> | unknown): Promise<string> {
  try {
    await action();
    return "ok";
  } catch (error) {
    return error instanceof Error ? error.name : String(error);
  }
}

scope.onmessage = async (event) => {
  const { configFile, outsidePort, baseDir } = event.data;
  scope.postMessage({
    readConfig: await attempt(() => Deno.readTextFile(configFile)),
    connectOutside: await attempt(async () =>
      (await Deno.connect({ hostname: "127.0.0.1", port: outsidePort })).close()
    ),
    readEnv: await attempt(() => Deno.env.get("HOME")),
    run: await attempt(() => new Deno.Command("true").output()),
    writeBaseDir: await attempt(() => Deno.writeTextFile(`${baseDir}/probe.txt`, "x")),
    writeAccounts: await attempt(async () => {
      await Deno.mkdir(`${baseDir}/acme`, { recursive: true });
      await Deno.writeTextFile(`${baseDir}/acme/probe.txt`, "x");
    }),
  });
};
