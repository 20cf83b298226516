#!/usr/bin/env bash
# Load benchmark of POST /v1/federation/token (not run in CI).
#
# Measures, in one run on this machine:
#   mcpg-auth on SQLite and on PostgreSQL,
#   the reference peer (node-oidc-provider, client_credentials, EdDSA JWT access tokens),
#   the ceiling (an axum handler that only signs a fixed claim set with a pre-parsed key),
# each at a fixed 1,000 req/s (latency) and at saturation with 16 connections (throughput),
# plus mcpg-auth's peak RSS. Installs what it needs (oha, the peer's npm packages).
#
# Usage: bench/token-load.sh [DURATION]        (default 10s per measurement)
# Env:   MCPG_BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10s}"
PG_URL="${MCPG_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
OUT="bench/out/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

need() { command -v "$1" >/dev/null 2>&1; }
need oha || { echo "installing oha (cargo install oha --locked)…"; cargo install oha --locked; }
need node || { echo "node is required for the reference peer" >&2; exit 1; }
[ -d bench/peer/node_modules ] || (cd bench/peer && npm ci --no-audit --no-fund)
cargo build --release -q -p mcpg-auth --bin mcpg-auth --example sign_ceiling

wait_http() { # URL
  for _ in $(seq 1 100); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "timed out waiting for $1" >&2; return 1
}

json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

api() { # METHOD PATH BODY
  curl -fsS -X "$1" "http://127.0.0.1:$PORT$2" -H "authorization: Bearer $ADMIN" \
    -H 'content-type: application/json' ${3:+-d "$3"}
}

start_auth() { # BACKEND PORT → sets AUTH_PID, CREDENTIAL
  local backend="$1"; PORT="$2"
  local dir; dir=$(mktemp -d)
  # --org-rps 0: the benchmark measures issuance, not the per-org rate limiter.
  local args=(serve --listen "127.0.0.1:$PORT" --data-dir "$dir" --issuer "http://127.0.0.1:$PORT"
              --bootstrap-token-file "$dir/bootstrap.token" --org-rps 0)
  if [ "$backend" = postgres ]; then
    # The service runs as a role that owns nothing (row-level security); the owner migrates.
    local db="mcpg_bench_$$_$PORT" role="mcpg_bench_app_$$_$PORT"
    PG_CLEANUP=(-c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "DROP ROLE IF EXISTS $role")
    psql "$PG_URL" -q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" \
      -c "DROP ROLE IF EXISTS $role" -c "CREATE ROLE $role LOGIN PASSWORD 'bench'" >/dev/null
    local server="${PG_URL#postgres://}"; server="${server#*@}"; server="${server%%/*}"
    args+=(--database-url "postgres://$role:bench@$server/$db" --migrate-database-url "${PG_URL%/*}/$db")
  fi
  RUST_LOG=warn target/release/mcpg-auth "${args[@]}" >"$OUT/auth-$backend.log" 2>&1 &
  AUTH_PID=$!; PIDS+=("$AUTH_PID")
  wait_http "http://127.0.0.1:$PORT/readyz"
  ADMIN=$(cat "$dir/bootstrap.token")
  api POST /v1/orgs '{"slug":"bench","display_name":"Bench"}' >/dev/null
  api PUT /v1/orgs/bench/license '{"tier":"enterprise","valid_for_days":365}' >/dev/null
  api POST /v1/orgs/bench/workspaces '{"slug":"platform"}' >/dev/null
  api POST /v1/orgs/bench/workspaces/platform/environments '{"slug":"prod"}' >/dev/null
  CREDENTIAL=$(api POST /v1/orgs/bench/workspaces/platform/environments/prod/gateways \
    '{"name":"bench-gw"}' | json_field '["credential"]')
}

run_oha() { # NAME URL MODE(rate|sat) EXTRA…
  local name="$1" url="$2" mode="$3"; shift 3
  local load=(-c 16)
  [ "$mode" = rate ] && load=(-q 1000 -c 16 --latency-correction)
  oha --no-tui --output-format json -z "$DURATION" "${load[@]}" -m POST "$@" "$url" \
    >"$OUT/$name-$mode.json"
}

bench_auth() { # BACKEND PORT
  start_auth "$1" "$2"
  local url="http://127.0.0.1:$2/v1/federation/token"
  run_oha "mcpg-auth-$1" "$url" sat -H "authorization: Bearer $CREDENTIAL"
  run_oha "mcpg-auth-$1" "$url" rate -H "authorization: Bearer $CREDENTIAL"
  grep VmHWM "/proc/$AUTH_PID/status" | awk '{print $2}' >"$OUT/mcpg-auth-$1-rss-kb.txt"
  kill "$AUTH_PID"; wait "$AUTH_PID" 2>/dev/null || true
  if [ "$1" = postgres ]; then psql "$PG_URL" -q "${PG_CLEANUP[@]}" >/dev/null; fi
}

bench_auth sqlite 8451
bench_auth postgres 8452

node bench/peer/oidc-peer.mjs 8453 >"$OUT/peer.log" 2>&1 & PIDS+=($!)
wait_http "http://127.0.0.1:8453/.well-known/openid-configuration"
peer=(-H 'content-type: application/x-www-form-urlencoded'
      -a 'bench-gateway:bench-secret-not-a-real-one' -d 'grant_type=client_credentials')
run_oha peer http://127.0.0.1:8453/token sat "${peer[@]}"
run_oha peer http://127.0.0.1:8453/token rate "${peer[@]}"

target/release/examples/sign_ceiling 127.0.0.1:8454 >"$OUT/ceiling.log" 2>&1 & PIDS+=($!)
sleep 0.5
run_oha ceiling http://127.0.0.1:8454/v1/federation/token sat
run_oha ceiling http://127.0.0.1:8454/v1/federation/token rate

python3 - "$OUT" <<'PY'
import json, sys, pathlib
out = pathlib.Path(sys.argv[1])
def load(name, mode):
    data = json.loads((out / f"{name}-{mode}.json").read_text())
    summary, pct = data["summary"], data["latencyPercentiles"]
    codes = data.get("statusCodeDistribution", {})
    ok = sum(v for k, v in codes.items() if k.startswith("2"))
    return summary["requestsPerSec"], pct["p50"] * 1e3, pct["p99"] * 1e3, ok, sum(codes.values())
rows = ["mcpg-auth-sqlite", "mcpg-auth-postgres", "peer", "ceiling"]
sat = {r: load(r, "sat") for r in rows}
rate = {r: load(r, "rate") for r in rows}
print(f"results in {out}\n")
print("| server | saturated req/s (c=16) | p99 at saturation | 1,000 req/s: p50 | p99 | non-2xx | RSS peak |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    rss = out / f"{r}-rss-kb.txt"
    rss = f"{int(rss.read_text().strip()) / 1024:.1f} MB" if rss.exists() else "-"
    bad = (sat[r][4] - sat[r][3]) + (rate[r][4] - rate[r][3])
    print(f"| {r} | {sat[r][0]:,.0f} | {sat[r][2]:.2f} ms | {rate[r][1]:.2f} ms | {rate[r][2]:.2f} ms | {bad} | {rss} |")
for r in rows[:2]:
    print(f"\n{r}: {sat[r][0] / sat['peer'][0]:.1f}x the peer, {sat[r][0] / sat['ceiling'][0]:.0%} of the ceiling")
PY
