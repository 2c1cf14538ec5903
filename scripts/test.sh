#!/bin/sh
# The README's test command (`npx -y deno@2.9.6 task test`) runs this: it installs what the tests need on a
# fresh Debian machine (the Debian packages below, when missing) and then runs everything a reviewer would:
# `deno task ok` (format check, lint, type check, all tests with the lockfile frozen), then a 2-minute soak.
set -eu
cd "$(dirname "$0")/.."

# command:package pairs the tests use. tests/slow_clients_test.ts runs slowhttptest and builds a small
# LD_PRELOAD shim with cc (slowhttptest sends no SNI, which nexo needs).
NEEDED="curl:curl openssl:openssl nghttp:nghttp2-client pebble:pebble pebble-challtestsrv:pebble sslscan:sslscan"
NEEDED="$NEEDED slowhttptest:slowhttptest cc:gcc"
# tests/trust_test.ts drives headless Chromium against nexo trust (NSS's certutil); tests/readme_test.ts runs
# the README's testssl.sh audit of the demo (scripts/tls_audit.sh reads testssl's JSON with jq).
NEEDED="$NEEDED chromium:chromium certutil:libnss3-tools testssl:testssl.sh jq:jq"
# tests/rfc2136_test.ts runs a real BIND (named is in /usr/sbin, outside a plain user's PATH) and its nsupdate.
NEEDED="$NEEDED /usr/sbin/named:bind9 nsupdate:bind9-dnsutils"
# tests/redis_storage_test.ts runs a real Redis.
NEEDED="$NEEDED redis-server:redis-server"
missing=""
for pair in $NEEDED; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing="$missing ${pair#*:}"
done
if [ -n "$missing" ]; then
  echo "test.sh: installing Debian packages:$missing"
  if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "test.sh: need root or sudo to install:$missing (apt-get install$missing)" >&2
    exit 1
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

deno task ok
# A compressed day of production (tests/soak/run.ts): everything at once for two minutes, invariants checked.
exec deno task soak --duration 2m
