// A real browser for tests: headless Chromium (Debian's chromium package), with its own profile and the
// HOME whose NSS database (~/.pki/nssdb) it trusts, as a user's browser would. Nothing here skips a
// certificate check.

/** Opens `url` in headless Chromium with a new profile: the page's DOM, or the network error it showed. */
export async function openInChromium(
  url: string,
  home: string,
): Promise<{ dom: string; error: string | null }> {
  const profile = await Deno.makeTempDir({ dir: home, prefix: "chromium-" });
  const output = await new Deno.Command("chromium", {
    // --no-sandbox: tests run as root, where Chromium's sandbox refuses to start. Nothing here skips a
    // certificate check.
    args: ["--headless", "--no-sandbox", "--disable-gpu", `--user-data-dir=${profile}`, "--dump-dom", url],
    env: { HOME: home },
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  const stderr = new TextDecoder().decode(output.stderr);
  return {
    dom: new TextDecoder().decode(output.stdout),
    error: /net::(ERR_[A-Z_]+)/.exec(stderr)?.[1] ?? null,
  };
}
