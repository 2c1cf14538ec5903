// End-to-end: the command line as other tools drive it (exit codes, FILE:LINE:COL errors, --help, the config
// path order) and the demo a new user runs first.

import assert from "node:assert/strict";
import { closedPort } from "./upstreams.ts";

// From the sources (`deno run main.ts`, the README's development form); the other end-to-end tests run the
// bundle that ships (tests/bundle.ts), so both forms are exercised.
const MAIN = new URL("../main.ts", import.meta.url).pathname;
const SEED = new URL("./testdata/seed.yaml", import.meta.url).pathname;

async function nexo(args: string[], env: Record<string, string> = {}) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code: output.code, stdout: decoder.decode(output.stdout), stderr: decoder.decode(output.stderr) };
}

Deno.test("check accepts the seed config, exits 0 and says what it will do", async () => {
  const result = await nexo(["check", "--config", SEED]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /seed\.yaml: ok\n/);
  assert.match(result.stdout, /listen :443, http_listen off, issuer acme/);
  assert.match(result.stdout, /routes \(3\):/);
  assert.match(result.stdout, /api\.example\.com\s+-> http:\/\/172\.17\.0\.1:8080\//);
  assert.match(result.stdout, /example\.com\s+=> https:\/\/github\.com\/yourusername \(302\)/);
  assert.match(
    result.stdout,
    /certificates \(1, DNS-01 via Cloudflare\):\n {2}\*\.example\.com \+ example\.com {2}covers api\.example\.com, blog\.example\.com, example\.com/,
  );
  assert.doesNotMatch(result.stdout, /your-cloudflare-api-token/, "the token is never printed");
});

Deno.test("check prints the warnings the server would log, exits 0, and never the token", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/config.yaml`;
    await Deno.writeTextFile(
      file,
      `limits:\n  max_header: 32KiB\nacme:\n  renew_before: 1500h\ncloudflare:\n  api_token: check-secret-token\n` +
        `proxies:\n  "a.example.com":\n    upstream: http://127.0.0.1:1\n`,
    );
    await Deno.chmod(file, 0o644);
    const result = await nexo(["check", "--config", file]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /warnings \(3\):\n/);
    assert.match(result.stdout, /limits\.max_header: 32768 bytes is more than Deno lets through/);
    assert.match(result.stdout, /acme\.renew_before: .*it renews 45 days before expiry/);
    assert.match(result.stdout, /cloudflare\.api_token: .*mode 0644.*chmod 600/);
    assert.doesNotMatch(result.stdout, /check-secret-token/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("check reports every problem as FILE:LINE:COL with the fix and exits 1", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/bad.yaml`;
  await Deno.writeTextFile(
    file,
    `proxies:\n  "api.example.com":\n    upstrem: http://127.0.0.1:8080\n  "blog.example.com":\n    upstream: localhost:3000\n`,
  );
  try {
    const result = await nexo(["check", "--config", file]);
    assert.equal(result.code, 1);
    const lines = result.stderr.trim().split("\n");
    assert.ok(lines.some((l) => l.startsWith(`${file}:3:5: `) && l.includes(`"upstream"`)), result.stderr);
    assert.ok(
      lines.some((l) => l.startsWith(`${file}:5:15: `) && l.includes(`http://localhost:3000`)),
      result.stderr,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("check finds the config through $NEXO_CONFIG when --config is absent", async () => {
  const result = await nexo(["check"], { NEXO_CONFIG: SEED });
  assert.equal(result.code, 0, result.stderr);
  const missing = await nexo(["check"], { NEXO_CONFIG: "/nonexistent/nexo.yaml" });
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /\/nonexistent\/nexo\.yaml/);
});

Deno.test("server exits 1 with file:line:col log lines on an invalid config", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/bad.yaml`;
  await Deno.writeTextFile(
    file,
    `listen: "127.0.0.1:0"\nproxies:\n  "a.test":\n    redirect: x.test\n    upstream: http://x\n`,
  );
  try {
    const result = await nexo(["server", "--config", file, "--log-format", "json"]);
    assert.equal(result.code, 1);
    const line = result.stderr.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l))
      .find((l) => l.msg === "config invalid");
    assert.ok(line, result.stderr);
    assert.equal(line.file, file);
    assert.equal(typeof line.line, "number");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("version and --help answer on every command", async () => {
  const version = await nexo(["version"]);
  assert.equal(version.code, 0);
  assert.match(version.stdout, /^nexo \d+\.\d+\.\d+/);
  for (
    const args of [["--help"], ["server", "--help"], ["serve", "--help"], ["check", "--help"], [
      "demo",
      "--help",
    ]]
  ) {
    const help = await nexo(args);
    assert.equal(help.code, 0, `${args.join(" ")}: ${help.stderr}`);
    assert.match(help.stdout, /Usage: nexo/);
  }
  const unknown = await nexo(["frobnicate"]);
  assert.notEqual(unknown.code, 0);
});

Deno.test("demo runs nexo for real and answers through its local CA", async () => {
  const dir = await Deno.makeTempDir();
  const [httpsPort, httpPort] = [closedPort(), closedPort()];
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      MAIN,
      "demo",
      "--dir",
      dir,
      "--port",
      String(httpsPort),
      "--http-port",
      String(httpPort),
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const logs = new Response(child.stderr).text();
  try {
    let printed = "";
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    while (!printed.includes("Stop with Ctrl-C")) {
      const { done, value } = await reader.read();
      if (done) throw new Error(`demo exited early:\n${printed}`);
      printed += value;
    }
    // Run the first curl command exactly as the demo printed it.
    const command = printed.split("\n").map((l) => l.trim()).find((l) => l.startsWith("curl --cacert"));
    assert.ok(command, printed);
    const curl = await new Deno.Command("sh", {
      args: ["-c", command.replace(/\s+#.*$/, "")],
      stdout: "piped",
    })
      .output();
    assert.equal(curl.code, 0);
    assert.match(new TextDecoder().decode(curl.stdout), /Hello from the example app behind nexo/);
    // The config it wrote says its upstream lives only as long as the demo (a server run on it gets 502).
    assert.match(
      await Deno.readTextFile(`${dir}/config.yaml`),
      /listens on port \d+ only while the demo runs/,
    );
    child.kill("SIGINT");
    await reader.cancel();
    assert.equal((await child.status).code, 0);
    // Stopping is logged, as the server's is.
    assert.match(await logs, /shutting down[\s\S]*SIGINT[\s\S]*stopped/);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // already exited
    }
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("server logs in text and JSON formats and never prints the Cloudflare token", async () => {
  const dir = await Deno.makeTempDir();
  const token = "cli-log-secret-token-0987654321";
  const file = `${dir}/config.yaml`;
  await Deno.writeTextFile(
    file,
    `base_dir: ${dir}\nissuer: internal\nlisten: "127.0.0.1:0"\ncloudflare:\n  api_token: ${token}\n` +
      `proxies:\n  "a.test":\n    upstream: http://127.0.0.1:9\n`,
  );
  try {
    for (const format of ["text", "json"]) {
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", MAIN, "server", "--config", file, "--log-format", format],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
      let output = "";
      while (!output.includes("listening")) output += (await reader.read()).value ?? "";
      child.kill("SIGTERM");
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        output += value;
      }
      await child.stdout.cancel();
      assert.equal((await child.status).code, 0);
      if (format === "json") {
        for (const line of output.trim().split("\n")) JSON.parse(line);
      } else {
        assert.match(output, /^\S+Z INFO {2}config loaded file=/m);
      }
      assert.ok(!output.includes(token), `${format} output holds no token`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("hash-password reads a piped password and prints a bcrypt hash that verifies", async () => {
  const { bcryptVerify, parseBcryptHash } = await import("../lib/auth/bcrypt.ts");
  const run = async (stdin: string, args: string[] = []) => {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", MAIN, "hash-password", ...args],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(stdin));
    await writer.close();
    const output = await child.output();
    const decoder = new TextDecoder();
    return {
      code: output.code,
      stdout: decoder.decode(output.stdout),
      stderr: decoder.decode(output.stderr),
    };
  };
  // As `echo "$PW" | nexo hash-password` sends it: one trailing newline, not part of the password.
  const made = await run("correct horse\n", ["--cost", "10"]);
  assert.equal(made.code, 0, made.stderr);
  const hash = made.stdout.trim();
  assert.deepEqual(parseBcryptHash(hash), { version: "2b", cost: 10 });
  assert.ok(await bcryptVerify("correct horse", hash));
  assert.ok(!await bcryptVerify("correct horse\n", hash));
  // The default cost is 12; the hash is usable in a config as printed.
  assert.equal(parseBcryptHash((await run("pw")).stdout.trim())?.cost, 12);
  const empty = await run("\n");
  assert.equal(empty.code, 1);
  assert.match(empty.stderr, /the password is empty/);
  const cheap = await run("pw", ["--cost", "4"]);
  assert.equal(cheap.code, 1);
  assert.match(cheap.stderr, /--cost must be a whole number from 10 to 14, got '4'/);
});
