#!/bin/sh
# Installs nexo from this repository on a Debian-like machine, without the compiled binary (which needs
# Deno's `denort`): Deno 2.9.6 from npm, nexo's sources with their dependencies cached, a /usr/local/bin/nexo
# launcher that runs them with exactly the permissions `deno task compile` bakes in, /etc/nexo with a config
# skeleton (mode 0600, never overwritten), and the systemd unit (examples/nexo.service), enabled.
#
#   sudo sh scripts/install.sh           # install, create the nexo user, enable and start the service
#   DESTDIR=/tmp/root sh scripts/install.sh   # stage into a directory (no user, no systemctl): packaging, tests
#
# Environment: DESTDIR (staging root, default none), PREFIX (/usr/local), DENO (an existing Deno 2.9.6 binary
# to copy instead of installing one from npm). Run it again to upgrade: the config is kept.
set -eu
cd "$(dirname "$0")/.."

DESTDIR="${DESTDIR:-}"
PREFIX="${PREFIX:-/usr/local}"
DENO_VERSION="2.9.6"
LIB="$PREFIX/lib/nexo"
ETC="/etc/nexo"
say() { echo "install.sh: $*"; }
die() {
  echo "install.sh: $*" >&2
  exit 1
}

[ -f main.ts ] && [ -f deno.json ] && [ -f deno.lock ] || die "run it from a nexo checkout (main.ts not found)"
if [ -z "$DESTDIR" ] && [ "$(id -u)" != 0 ]; then die "run it as root (sudo sh scripts/install.sh), or set DESTDIR"; fi

# Deno: the pinned version, from npm (the same source the README's commands use).
mkdir -p "$DESTDIR$LIB/bin"
if [ -n "${DENO:-}" ]; then
  cp "$DENO" "$DESTDIR$LIB/bin/deno"
else
  command -v npm >/dev/null 2>&1 || die "npm is needed to fetch Deno $DENO_VERSION (apt-get install npm)"
  say "fetching Deno $DENO_VERSION from npm"
  staging="$(mktemp -d)"
  npm install --silent --prefer-offline --no-audit --no-fund --prefix "$staging" "deno@$DENO_VERSION" >/dev/null
  cp "$staging/node_modules/deno/deno" "$DESTDIR$LIB/bin/deno"
  rm -rf "$staging"
fi
chmod 0755 "$DESTDIR$LIB/bin/deno"
deno="$DESTDIR$LIB/bin/deno"
version="$("$deno" --version | head -n 1)"
case "$version" in "deno $DENO_VERSION "*) ;; *) die "expected Deno $DENO_VERSION, got: $version" ;; esac

# nexo's sources (no tests), replaced whole on an upgrade, and the bundle built from them (`deno task build`:
# dist/, what the launcher runs; 3-4 MiB less memory than the sources, DEVELOPERS.md), cached for its paths
# in a cache of its own. The build fetches esbuild from npm once.
say "installing nexo into $LIB"
rm -rf "$DESTDIR$LIB/app"
mkdir -p "$DESTDIR$LIB/app"
cp main.ts deno.json deno.lock "$DESTDIR$LIB/app/"
cp -R lib "$DESTDIR$LIB/app/lib"
find "$DESTDIR$LIB/app/lib" -name '*_test.ts' -delete
(cd "$DESTDIR$LIB/app" && DENO_DIR="$DESTDIR$LIB/cache" "$deno" task --quiet build) ||
  die "building the bundle failed (deno task build; it fetches esbuild from npm)"
chmod -R a+rX,go-w "$DESTDIR$LIB"

# The launcher: the flags of `deno task compile` (deno.json, the one place they are written), so the
# installed nexo has exactly the compiled binary's permissions.
flags="$("$deno" eval --quiet '
  const task = JSON.parse(Deno.readTextFileSync("deno.json")).tasks.compile;
  console.log(task.split(/\s+/).filter((a) => /^--(allow-|v8-flags=|unstable-|no-code-cache$)/.test(a)).join(" "));
')"
TRUST_TOOLS="/usr/bin/certutil,/usr/sbin/update-ca-certificates"
ANCHORS="/usr/local/share/ca-certificates"
mkdir -p "$DESTDIR$PREFIX/bin"
cat >"$DESTDIR$PREFIX/bin/nexo" <<EOF
#!/bin/sh
# nexo, installed from source by scripts/install.sh: Deno $DENO_VERSION with the permissions that
# \`deno task compile\` bakes in. The config defaults to $ETC/config.yaml (NEXO_CONFIG or --config to change).
export DENO_DIR="$LIB/cache"
export DENO_LOG="\${DENO_LOG:-info,h2=error}"
export MALLOC_ARENA_MAX="\${MALLOC_ARENA_MAX:-1}"
export DENO_USR2_MEMORY_TRIM="\${DENO_USR2_MEMORY_TRIM:-1}"
export NEXO_CONFIG="\${NEXO_CONFIG:-$ETC/config.yaml}"
extra=""
case "\${1:-}" in
  # nexo trust changes the system store and the browsers' NSS databases through their own tools: only these
  # two commands may run them, and write where they keep their files.
  trust | untrust)
    extra="--allow-run=$TRUST_TOOLS --allow-read=$TRUST_TOOLS,$ANCHORS,\$HOME --allow-write=$ANCHORS,\$HOME/.pki" ;;
esac
exec "$LIB/bin/deno" run --quiet --cached-only --frozen --config "$LIB/app/deno.json" $flags \$extra "$LIB/app/dist/main.js" "\$@"
EOF
chmod 0755 "$DESTDIR$PREFIX/bin/nexo"

# /etc/nexo: the config skeleton once (it will hold the Cloudflare token: owner-only), state beside it.
mkdir -p "$DESTDIR$ETC"
chmod 0750 "$DESTDIR$ETC"
if [ ! -e "$DESTDIR$ETC/config.yaml" ]; then
  (
    umask 077
    {
      echo "# Written by scripts/install.sh from examples/config.yaml. Put in your email, Cloudflare API token"
      echo "# (Zone DNS edit) and hosts, then: nexo check && systemctl start nexo"
      sed -e '/^# yaml-language-server/d' -e '/^# The seed configuration/d' \
        -e "s|^base_dir: .*|base_dir: $ETC|" -e "s|^cert_dir: .*|cert_dir: $ETC/certs|" examples/config.yaml
    } >"$DESTDIR$ETC/config.yaml"
  )
  say "wrote $ETC/config.yaml: put your email, Cloudflare token and hosts in it"
else
  say "kept $ETC/config.yaml"
fi

mkdir -p "$DESTDIR/etc/systemd/system"
cp examples/nexo.service "$DESTDIR/etc/systemd/system/nexo.service"
chmod 0644 "$DESTDIR/etc/systemd/system/nexo.service"

# The same check `nexo check` makes, on the installed files.
if ! DENO_DIR="$DESTDIR$LIB/cache" "$deno" run --quiet --cached-only --frozen --config "$DESTDIR$LIB/app/deno.json" \
  --allow-read --allow-env "$DESTDIR$LIB/app/dist/main.js" check --config "$DESTDIR$ETC/config.yaml"; then
  say "the config does not pass nexo check yet: edit $ETC/config.yaml, then run: nexo check"
fi

if [ -n "$DESTDIR" ]; then
  say "staged into $DESTDIR (no user created, no service started)"
  exit 0
fi
id nexo >/dev/null 2>&1 || useradd --system --home-dir "$ETC" --shell /usr/sbin/nologin nexo
chown -R nexo:nexo "$ETC"
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable nexo
  say "enabled nexo.service; start it once the config is ready: systemctl start nexo (logs: journalctl -u nexo)"
else
  say "systemd is not running here: start nexo with: sudo -u nexo nexo server"
fi
