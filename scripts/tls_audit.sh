#!/bin/sh
# Full TLS audit of a running nexo with testssl.sh: protocols, every cipher suite, forward secrecy, server
# defaults, the vulnerability checks (Heartbleed, CCS, ROBOT, CRIME, POODLE, SWEET32, FREAK, DROWN, LOGJAM,
# BEAST, LUCKY13, RC4...) and browser simulations. It takes a few minutes, so it is not part of the test
# suite; tests/tls_audit_test.ts runs the quick sslscan checks there on every `deno task test`.
#
# Usage: scripts/tls_audit.sh HOST[:PORT] [IP]
#   HOST   a name nexo serves; it goes out as SNI (nexo has no default certificate, so a scan without a
#          configured name sees only refused handshakes). PORT defaults to 443.
#   IP     connect here instead of resolving HOST, for a local nexo or one behind DNS you do not control.
# Examples:
#   scripts/tls_audit.sh app.example.com
#   deno task demo &  scripts/tls_audit.sh app.localhost:8443 127.0.0.1
#
# Needs the Debian packages testssl.sh (command `testssl`) and jq. Prints testssl's report, then a summary.
# Exit status: 0 when nothing is vulnerable and no old protocol or weak cipher class is offered; 1 when
# something is; 2 on a usage or set-up error. Findings about the certificate (trust, expiry, revocation) are
# listed for review but do not fail the audit: a local CA (`issuer: internal`) triggers them by design.
set -eu

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  sed -n '2,/^set -eu/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
  exit 2
fi
target=$1
ip=${2:-}

testssl=$(command -v testssl || command -v testssl.sh || true)
if [ -z "$testssl" ] || ! command -v jq >/dev/null 2>&1; then
  echo "tls_audit.sh: needs testssl.sh and jq: apt-get install -y testssl.sh jq" >&2
  exit 2
fi

json=$(mktemp)
trap 'rm -f "$json"' EXIT
rm -f "$json" # testssl refuses to overwrite an existing file
# --warnings batch: never stop to ask; --ip: connect there while sending HOST as SNI and Host header.
set -- --warnings batch --jsonfile "$json"
[ -n "$ip" ] && set -- "$@" --ip "$ip"
[ -t 1 ] || set -- "$@" --color 0 # plain text into a file or a pipe
status=0
"$testssl" "$@" "$target" || status=$?
if [ ! -s "$json" ]; then
  echo "tls_audit.sh: testssl produced no report (exit $status); see its output above" >&2
  exit 2
fi

echo
echo "== tls_audit summary for $target${ip:+ via $ip} =="
jq -r 'group_by(.severity) | map("\(.[0].severity): \(length)") | join(", ") | "findings by severity: \(.)"' "$json"

# testssl writes "VULNERABLE" in capitals only for a positive result ("not vulnerable (OK)" otherwise).
vulnerable=$(jq -r '.[] | select(.finding | test("VULNERABLE")) | "  \(.id): \(.finding)"' "$json")
# Protocols below TLS 1.2 and the broken cipher classes must not even be offered.
weak=$(jq -r '.[] | select((.id | test("^(SSLv2|SSLv3|TLS1|TLS1_1|cipherlist_(NULL|aNULL|EXPORT|LOW|3DES_IDEA))$"))
  and (.finding | test("^offered"))) | "  \(.id): \(.finding)"' "$json")
nofs=$(jq -r '.[] | select(.id == "PFS" and (.finding | test("^offered") | not)) | "  PFS: \(.finding)"' "$json")
review=$(jq -r '.[] | select(.severity == "MEDIUM" or .severity == "HIGH" or .severity == "CRITICAL")
  | "  \(.severity) \(.id): \(.finding)"' "$json")

failed=0
if [ -n "$vulnerable" ]; then
  echo "VULNERABLE:"
  echo "$vulnerable"
  failed=1
else
  echo "vulnerabilities: none rated vulnerable"
fi
if [ -n "$weak$nofs" ]; then
  echo "weak protocols or ciphers offered:"
  [ -n "$weak" ] && echo "$weak"
  [ -n "$nofs" ] && echo "$nofs"
  failed=1
else
  echo "protocols and ciphers: TLS 1.2+ only, no NULL/anon/EXPORT/LOW/3DES, forward secrecy offered"
fi
if [ -n "$review" ]; then
  echo "to review (certificate findings are expected with a local CA; cipher_order is client-chosen by design):"
  echo "$review"
fi
exit $failed
