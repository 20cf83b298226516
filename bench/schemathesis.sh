#!/usr/bin/env bash
# Property-based API testing with schemathesis against the served OpenAPI document (not run
# in CI). Starts a release-built `mcpg-auth serve` on SQLite in a temporary directory on a
# free loopback port, authenticates with its bootstrap admin token, runs schemathesis
# (bounded by examples per operation and a time budget) and reports the server errors and
# the schema-conformance failures it found. Exits non-zero if it found any.
#
#   bench/schemathesis.sh [MAX_EXAMPLES] [MAX_SECONDS]     (defaults: 30 and 300)
#
# Installs schemathesis from PyPI into bench/out/schemathesis-venv when missing. The route
# that revokes admin tokens (`DELETE /v1/admin/tokens/{id}`) is excluded: it could revoke
# the token the run authenticates with. Reports land in bench/out/schemathesis-<time>/.
set -euo pipefail
cd "$(dirname "$0")/.."
MAX_EXAMPLES="${1:-30}"
MAX_SECONDS="${2:-300}"
OUT="bench/out/schemathesis-$(date -u +%Y%m%dT%H%M%SZ)"
VENV="bench/out/schemathesis-venv"
mkdir -p "$OUT"
DATA=$(mktemp -d)
AUTH_PID=
cleanup() {
  if [ -n "$AUTH_PID" ]; then kill "$AUTH_PID" 2>/dev/null || true; wait "$AUTH_PID" 2>/dev/null || true; fi
  rm -rf "$DATA"
}
trap cleanup EXIT

if [ ! -x "$VENV/bin/schemathesis" ]; then
  echo "installing schemathesis into $VENV…"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q schemathesis
fi
cargo build --release -q -p mcpg-auth --bin mcpg-auth

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
# Generous rate limits: the run measures behaviour, not the limiter.
MCPG_OPS_LISTEN=127.0.0.1:0 target/release/mcpg-auth serve --listen "127.0.0.1:$PORT" --data-dir "$DATA" --issuer "$BASE" \
  --bootstrap-token-file "$DATA/bootstrap.token" --admin-rps 100000 --org-rps 100000 \
  >"$OUT/auth.log" 2>&1 &
AUTH_PID=$!
for _ in $(seq 1 200); do curl -fsS -o /dev/null "$BASE/readyz" 2>/dev/null && break; sleep 0.1; done
curl -fsS -o /dev/null "$BASE/readyz"
ADMIN=$(cat "$DATA/bootstrap.token")

set +e
"$VENV/bin/schemathesis" run "$BASE/openapi.yaml" \
  --url "$BASE" \
  --header "Authorization: Bearer $ADMIN" \
  --checks all \
  --exclude-checks ignored_auth \
  --exclude-path-regex '^/v1/admin/tokens/\{id\}$' \
  --max-examples "$MAX_EXAMPLES" \
  --max-time "$MAX_SECONDS" \
  --workers 2 \
  --seed 42 \
  --report json,junit --report-dir "$OUT" \
  --no-color >"$OUT/schemathesis.txt" 2>&1
set -e
sed -n '/= SUMMARY =/,$p' "$OUT/schemathesis.txt"

# Counts from the summary's "Failures:" lines (`❌ ST202 Schema-valid request rejected: 3`):
# server errors; conformance failures (undocumented statuses, content types or headers,
# responses off their schema, requests off the schema accepted, and every other check but
# the two below); and, reported apart, schema-valid requests the server refuses for rules
# a JSON Schema cannot state (an opaque cursor, a key that must parse, a state-dependent
# rule) and stateful-phase findings from guessed links between operations.
python3 - "$OUT" <<'PY'
import re, sys
out = sys.argv[1]
text = open(f"{out}/schemathesis.txt", encoding="utf-8", errors="replace").read()
summary = text.split("Failures:", 1)[1].split("\n\n", 1)[0] if "Failures:" in text else ""
counts = {m.group(1) + " " + m.group(2): int(m.group(3))
          for m in re.finditer(r"(ST\d+) ([^:\n]+): (\d+)", summary)}
server = sum(n for k, n in counts.items() if "Server error" in k)
apart = {k: n for k, n in counts.items() if k.startswith(("ST202", "ST3"))}
conformance = sum(counts.values()) - server - sum(apart.values())
errors = len(re.findall(r"^\s*🚫 .*Error", text, re.M))
print(f"server errors: {server}; schema-conformance failures: {conformance}")
print(f"reported apart: {apart or 'none'}; schemathesis runtime errors: {errors}")
print(f"reports: {out}")
sys.exit(1 if server or conformance else 0)
PY
