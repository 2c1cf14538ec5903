// Running Debian's slowhttptest against nexo over TLS: the LD_PRELOAD shim that makes it send SNI, and a
// runner that summarizes its per-second statistics. The attacks and what they must not do to nexo are
// tests/slow_clients_test.ts's.

import assert from "node:assert/strict";

/**
 * slowhttptest sends no SNI (it never calls SSL_set_tlsext_host_name), and nexo, which has no default
 * certificate, fails such handshakes: without help every attack would end at the TLS handshake. A real
 * attacker sends SNI, so an LD_PRELOAD shim adds it to every SSL object slowhttptest creates. It also makes
 * "localhost" resolve to IPv4 only: slowhttptest connects to the first address only, which is ::1 on hosts
 * whose /etc/hosts lists it first, where nexo (on 127.0.0.1) is not listening.
 */
export async function buildSniShim(dir: string): Promise<string> {
  const source = `${dir}/sni_shim.c`;
  const library = `${dir}/sni_shim.so`;
  await Deno.writeTextFile(
    source,
    `/* No headers and -nostdlib: this builds with the gcc package alone (no libc6-dev); every symbol used
   here resolves at load time from slowhttptest, which links libc and libssl. */
typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;
struct addrinfo { int flags, family, socktype, protocol; unsigned addrlen; void *addr; char *canonname; void *next; };
void *dlsym(void *handle, const char *symbol);
char *getenv(const char *name);
long SSL_ctrl(SSL *ssl, int cmd, long larg, void *parg);
#define RTLD_NEXT ((void *)-1l)
#define AF_INET 2
#define SSL_CTRL_SET_TLSEXT_HOSTNAME 55
#define TLSEXT_NAMETYPE_host_name 0
SSL *SSL_new(SSL_CTX *ctx) {
  SSL *(*real)(SSL_CTX *) = (SSL *(*)(SSL_CTX *))dlsym(RTLD_NEXT, "SSL_new");
  SSL *ssl = real(ctx);
  const char *name = getenv("SNI_SHIM_NAME");
  if (ssl && name) SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, (void *)name);
  return ssl;
}
typedef int (*getaddrinfo_fn)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res) {
  getaddrinfo_fn real = (getaddrinfo_fn)dlsym(RTLD_NEXT, "getaddrinfo");
  struct addrinfo ipv4 = {0};
  if (hints) ipv4 = *hints;
  ipv4.family = AF_INET;
  return real(node, service, &ipv4, res);
}
`,
  );
  const out = await new Deno.Command("cc", {
    args: ["-shared", "-fPIC", "-O2", "-nostdlib", "-o", library, source],
    stdout: "piped",
    stderr: "piped",
  }).output().catch((error) => {
    throw new Error(
      `cannot run cc to build the SNI shim (apt-get install gcc; scripts/test.sh does): ${error}`,
    );
  });
  assert.equal(out.code, 0, `cc failed:\n${new TextDecoder().decode(out.stderr)}`);
  return library;
}

export interface SlowStats {
  /** Most connections slowhttptest had open (CSV "Connected") in any second. */
  maxConnected: number;
  /** Whether slowhttptest's probe connection got a response every second (CSV "Service Available" > 0). */
  alwaysAvailable: boolean;
}

export interface SlowHttpTestOptions {
  /** The SNI shim built by buildSniShim. */
  shim: string;
  /** Target URL; its host is also the SNI name sent. */
  url: string;
  /** slowhttptest writes its per-second statistics to `${statsPrefix}.csv`. */
  statsPrefix: string;
}

/** Runs slowhttptest with `args` (mode and sizes) until it ends, and summarizes its per-second CSV. */
export async function runSlowHttpTest(args: string[], options: SlowHttpTestOptions): Promise<SlowStats> {
  const out = await new Deno.Command("slowhttptest", {
    args: [...args, "-u", options.url, "-g", "-o", options.statsPrefix],
    env: { LD_PRELOAD: options.shim, SNI_SHIM_NAME: new URL(options.url).hostname },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const output = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `slowhttptest ${args.join(" ")} failed:\n${output}`);
  // Columns: Seconds,Closed,Pending,Connected,Service Available (the connection count when its probe got an
  // answer within -p seconds, else 0).
  const rows = (await Deno.readTextFile(`${options.statsPrefix}.csv`)).trim().split("\n").slice(1)
    .map((line) => line.split(",").map(Number));
  assert.ok(rows.length > 0, `slowhttptest wrote no statistics:\n${output}`);
  return {
    maxConnected: Math.max(...rows.map((row) => row[3] ?? 0)),
    alwaysAvailable: rows.every((row) => (row[4] ?? 0) > 0),
  };
}
