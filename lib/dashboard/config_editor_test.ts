import assert from "node:assert/strict";
import { capturingLogger } from "../log_capture.ts";
import { ConfigEditor, MASK, maskSecrets, unmaskSecrets } from "./config_editor.ts";

const TOKEN = "cf-token-9a8b7c6d5e4f";
const CONFIG = `issuer: internal
cloudflare:
  api_token: ${TOKEN} # scoped to DNS edit
storage: { redis: { url: "redis://:r3dis-pass@10.0.0.5:6379/0" } }
admin:
  listen: ":9090"
  metrics_token: "scrape-token-0123456789"
proxies:
  "app.example.com":
    upstream: http://127.0.0.1:3000
`;

Deno.test("maskSecrets() hides every secret, and unmaskSecrets() puts them back where the mask is left", () => {
  const masked = maskSecrets(CONFIG);
  for (const secret of [TOKEN, "r3dis-pass", "scrape-token-0123456789"]) {
    assert.ok(!masked.includes(secret), secret);
  }
  assert.match(masked, new RegExp(`api_token: "\\*{8}" # scoped to DNS edit`));
  assert.match(masked, /redis:\/\/:\*{8}@10\.0\.0\.5/);
  assert.equal(unmaskSecrets(masked, CONFIG), CONFIG, "saved back unchanged: every secret kept");
  const changed = unmaskSecrets(
    masked.replace(`metrics_token: "${MASK}"`, `metrics_token: "new-scrape-token-000"`),
    CONFIG,
  );
  assert.match(changed, /metrics_token: "new-scrape-token-000"/);
  assert.match(changed, new RegExp(`api_token: ${TOKEN}`));
  assert.throws(
    () => unmaskSecrets(masked + `dns:\n  cloudflare:\n    api_token: "${MASK}"\n`, CONFIG),
    /api_token on line 3 is still masked, but secrets of its kind were added or removed/,
  );
  // Two tokens, the first block deleted while masked: the second must not get the first one's value.
  const two =
    `cloudflare:\n  api_token: first-token-aaaa\ndns:\n  zones:\n    b.com: { provider: cloudflare, ` +
    `cloudflare: { api_token: second-token-bbbb } }\n`;
  const withoutFirst = maskSecrets(two).replace(/^cloudflare:\n.*\n/, "");
  assert.throws(() => unmaskSecrets(withoutFirst, two), /added or removed/);
  assert.equal(
    unmaskSecrets(withoutFirst.replace(`"${MASK}"`, "second-token-bbbb"), two),
    two.replace(/^cloudflare:\n.*\n/, ""),
  );
});

Deno.test("maskSecrets() hides plain values to the end of the line, quoted keys, bcrypt hashes and URL passwords with @", () => {
  const hash = "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW";
  const text = `admin:\n  metrics_token: abc,def}ghi#jkl # comment\n  "password_hash": "${hash}"\n` +
    `storage: { redis: { url: "redis://:p@ss:word@10.0.0.5/0" } }\nproxies:\n  "a.example.com":\n` +
    `    upstream: http://x\n    basic_auth: { users: { alice: "${hash}" } }\n`;
  const masked = maskSecrets(text);
  for (const secret of ["abc", "def", "ghi#jkl", hash, "p@ss:word"]) {
    assert.ok(!masked.includes(secret), `${secret} in\n${masked}`);
  }
  assert.match(masked, /metrics_token: "\*{8}" # comment/);
  assert.match(masked, /alice: "\*{8}"/);
  assert.equal(unmaskSecrets(masked, text), text);
});

Deno.test("ConfigEditor saves a valid config atomically with its mode, refuses an invalid one or a stale version", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/config.yaml`;
    const base = `base_dir: ${dir}\n` +
      CONFIG.replace(/storage:.*\n/, "").replace("cloudflare:\n", "cloudflare:\n");
    await Deno.writeTextFile(file, base, { mode: 0o600 });
    await Deno.chmod(file, 0o600);
    const { log } = capturingLogger();
    const editor = new ConfigEditor({ file, log });
    const loaded = await editor.load();
    assert.ok(!loaded.text.includes(TOKEN));

    const invalid = await editor.save(
      loaded.text.replace("upstream: http://127.0.0.1:3000", "upstream: ftp://x"),
      loaded.version,
      "admin",
    );
    assert.equal(invalid.saved, false);
    assert.ok(
      !invalid.saved && invalid.status === 422 && invalid.issues[0]!.line === 10,
      JSON.stringify(invalid),
    );
    assert.equal(await Deno.readTextFile(file), base, "an invalid config is never written");

    const saved = await editor.save(loaded.text.replace("3000", "3001"), loaded.version, "admin");
    assert.equal(saved.saved, true);
    const now = await Deno.readTextFile(file);
    assert.equal(now, base.replace("3000", "3001"), "the masked token was kept, the rest as typed");
    assert.equal((await Deno.stat(file)).mode! & 0o777, 0o600);

    const stale = await editor.save(loaded.text, loaded.version, "admin");
    assert.ok(!stale.saved && stale.status === 409, "the version the editor had is gone");
    const route = await editor.changeRoute(
      { action: "set", host: "new.example.com", upstream: "http://127.0.0.1:4000" },
      saved.saved ? saved.version : "",
      "admin",
    );
    assert.equal(route.saved, true);
    assert.match(
      await Deno.readTextFile(file),
      / {2}"new\.example\.com":\n {4}upstream: "http:\/\/127\.0\.0\.1:4000"\n$/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
