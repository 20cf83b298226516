#!/usr/bin/env bash
# Load benchmark of POST /v1/federation/token (not run in CI).
#
# Measures, in one run on this machine:
#   mcpg-auth on SQLite and on PostgreSQL,
#   the reference peer (node-oidc-provider, client_credentials, EdDSA JWT access tokens),
#   the ceiling (an axum handler that only signs a fixed claim set with a pre-parsed key),
# each at saturation with 16 connections (throughput) and at a fixed 1,000 req/s (latency),
# and mcpg-auth on both backends again with every request carrying a usage report (ten
# plugins, bench/usage-report.json): reports on vs off, interleaved in the same rounds,
# plus mcpg-auth's peak RSS and each server's CPU time per token at saturation (steadier
# than throughput on a shared VM). All four servers run at once and are measured in turn,
# ROUNDS times, after a warm-up (the peer's JIT needs one); the table gives each figure's
# median over the rounds, and the CPU time the hypervisor stole during each measurement (a
# shared 2-core VM: when steal is high, latency tails are the host's, not ours).
# Installs what it needs (oha, the peer's npm packages). Both Rust servers are built with the
# `dist` profile, the one release binaries ship with.
#
# Usage: bench/token-load.sh [DURATION] [ROUNDS]   (default 10s per measurement, 3 rounds)
# Env:   MCPG_BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres)
#        MCPG_BENCH_BASELINE: another mcpg-auth binary (say, the previous commit's, built with
#        the dist profile) run beside on SQLite and measured interleaved with the others in
#        every round, to compare two builds within the noise of one run.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10s}"
ROUNDS="${2:-3}"
PG_URL="${MCPG_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
OUT="bench/out/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
PIDS=()
PG_CLEANUP=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ "${#PG_CLEANUP[@]}" -gt 0 ]; then
    sleep 0.5
    psql "$PG_URL" -q "${PG_CLEANUP[@]}" >/dev/null \
      || echo "warning: could not drop the benchmark's database and role (${PG_CLEANUP[*]})" >&2
  fi
}
trap cleanup EXIT

need() { command -v "$1" >/dev/null 2>&1; }
need oha || { echo "installing oha (cargo install oha --locked)…"; cargo install oha --locked; }
need node || { echo "node is required for the reference peer" >&2; exit 1; }
[ -d bench/peer/node_modules ] || (cd bench/peer && npm ci --no-audit --no-fund)
# The shipped profile (fat LTO, one codegen unit), for the service and the ceiling alike.
cargo build --profile dist -q -p mcpg-auth --bin mcpg-auth --example sign_ceiling

wait_http() { # URL
  for _ in $(seq 1 100); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "timed out waiting for $1" >&2; return 1
}

json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

api() { # METHOD PATH BODY
  curl -fsS -X "$1" "http://127.0.0.1:$PORT$2" -H "authorization: Bearer $ADMIN" \
    -H 'content-type: application/json' ${3:+-d "$3"}
}

start_auth() { # BACKEND PORT [BINARY] → sets AUTH_PID, CREDENTIAL
  local backend="$1" bin="${3:-target/dist/mcpg-auth}"; PORT="$2"
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
  # The operations listener on a free port (a variable: binaries from before it ignore it).
  MCPG_OPS_LISTEN=127.0.0.1:0 "$bin" "${args[@]}" >"$OUT/auth-$backend-$PORT.log" 2>&1 &
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

steal_ticks() { awk '/^cpu / {print $9}' /proc/stat; }
# utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat; the
# command name in field 2 has no spaces for any of our servers).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
declare -A PID_OF
total_ticks() { awk '/^cpu / {print $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }

run_oha() { # NAME URL MODE(rate|sat|warm) ROUND EXTRA…
  local name="$1" url="$2" mode="$3" round="$4"; shift 4
  local load=(-c 16) duration="$DURATION"
  [ "$mode" = rate ] && load=(-q 1000 -c 16 --latency-correction)
  [ "$mode" = warm ] && duration=3s
  local s0 t0 c0; s0=$(steal_ticks); t0=$(total_ticks); c0=$(cpu_ticks "${PID_OF[$name]}")
  oha --no-tui --output-format json -z "$duration" "${load[@]}" -m POST "$@" "$url" \
    >"$OUT/$name-$mode-$round.json"
  echo "$(( ($(steal_ticks) - s0) * 1000 / ($(total_ticks) - t0 + 1) ))" >"$OUT/$name-$mode-$round.steal"
  echo "$(( $(cpu_ticks "${PID_OF[$name]}") - c0 ))" >"$OUT/$name-$mode-$round.cpu"
}

start_auth sqlite 8451
SQLITE_PID=$AUTH_PID SQLITE_CRED=$CREDENTIAL PID_OF[mcpg-auth-sqlite]=$AUTH_PID
PID_OF[mcpg-auth-sqlite-usage]=$AUTH_PID
start_auth postgres 8452
POSTGRES_PID=$AUTH_PID POSTGRES_CRED=$CREDENTIAL PID_OF[mcpg-auth-postgres]=$AUTH_PID
PID_OF[mcpg-auth-postgres-usage]=$AUTH_PID
BASELINE="${MCPG_BENCH_BASELINE:-}"
if [ -n "$BASELINE" ]; then
  start_auth sqlite 8455 "$BASELINE"
  BASELINE_PID=$AUTH_PID BASELINE_CRED=$CREDENTIAL PID_OF[baseline-sqlite]=$AUTH_PID
fi

node bench/peer/oidc-peer.mjs 8453 >"$OUT/peer.log" 2>&1 & PIDS+=($!) PID_OF[peer]=$!
wait_http "http://127.0.0.1:8453/.well-known/openid-configuration"
target/dist/examples/sign_ceiling 127.0.0.1:8454 >"$OUT/ceiling.log" 2>&1 & PIDS+=($!) PID_OF[ceiling]=$!
sleep 0.5

peer=(-H 'content-type: application/x-www-form-urlencoded'
      -a 'bench-gateway:bench-secret-not-a-real-one' -d 'grant_type=client_credentials')
measure() { # MODE ROUND
  run_oha mcpg-auth-sqlite http://127.0.0.1:8451/v1/federation/token "$1" "$2" \
    -H "authorization: Bearer $SQLITE_CRED"
  run_oha mcpg-auth-postgres http://127.0.0.1:8452/v1/federation/token "$1" "$2" \
    -H "authorization: Bearer $POSTGRES_CRED"
  # The same servers and gateways, each token request carrying a ten-plugin usage report.
  run_oha mcpg-auth-sqlite-usage http://127.0.0.1:8451/v1/federation/token "$1" "$2" \
    -H "authorization: Bearer $SQLITE_CRED" -H 'content-type: application/json' \
    -D bench/usage-report.json
  run_oha mcpg-auth-postgres-usage http://127.0.0.1:8452/v1/federation/token "$1" "$2" \
    -H "authorization: Bearer $POSTGRES_CRED" -H 'content-type: application/json' \
    -D bench/usage-report.json
  run_oha peer http://127.0.0.1:8453/token "$1" "$2" "${peer[@]}"
  run_oha ceiling http://127.0.0.1:8454/v1/federation/token "$1" "$2"
  if [ -n "$BASELINE" ]; then
    run_oha baseline-sqlite http://127.0.0.1:8455/v1/federation/token "$1" "$2" \
      -H "authorization: Bearer $BASELINE_CRED"
  fi
}
measure warm 0
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round of $ROUNDS…"
  measure sat "$round"
  measure rate "$round"
done
grep VmHWM "/proc/$SQLITE_PID/status" | awk '{print $2}' >"$OUT/mcpg-auth-sqlite-rss-kb.txt"
grep VmHWM "/proc/$POSTGRES_PID/status" | awk '{print $2}' >"$OUT/mcpg-auth-postgres-rss-kb.txt"
if [ -n "$BASELINE" ]; then
  grep VmHWM "/proc/$BASELINE_PID/status" | awk '{print $2}' >"$OUT/baseline-sqlite-rss-kb.txt"
fi

python3 - "$OUT" "$ROUNDS" "$(getconf CLK_TCK)" <<'PY'
import json, sys, pathlib, statistics
out, rounds, tick = pathlib.Path(sys.argv[1]), int(sys.argv[2]), 1e6 / int(sys.argv[3])
def one(name, mode, r):
    data = json.loads((out / f"{name}-{mode}-{r}.json").read_text())
    summary, pct = data["summary"], data["latencyPercentiles"]
    codes = data.get("statusCodeDistribution", {})
    ok = sum(v for k, v in codes.items() if k.startswith("2"))
    steal = int((out / f"{name}-{mode}-{r}.steal").read_text()) / 10
    # The server's CPU per answered request: steadier than the throughput on a shared VM.
    cpu = int((out / f"{name}-{mode}-{r}.cpu").read_text()) * tick / max(sum(codes.values()), 1)
    return dict(rps=summary["requestsPerSec"], p50=pct["p50"] * 1e3, p99=pct["p99"] * 1e3,
                bad=sum(codes.values()) - ok, steal=steal, cpu=cpu)
def median(name, mode):
    runs = [one(name, mode, r) for r in range(1, rounds + 1)]
    m = {k: statistics.median(run[k] for run in runs) for k in ("rps", "p50", "p99", "steal", "cpu")}
    m["bad"] = sum(run["bad"] for run in runs)
    m["all_rps"] = [run["rps"] for run in runs]
    m["all_p99"] = [run["p99"] for run in runs]
    return m
rows = ["mcpg-auth-sqlite", "mcpg-auth-sqlite-usage", "mcpg-auth-postgres",
        "mcpg-auth-postgres-usage", "peer", "ceiling"]
if (out / "baseline-sqlite-sat-1.json").exists():
    rows.append("baseline-sqlite")
sat = {r: median(r, "sat") for r in rows}
rate = {r: median(r, "rate") for r in rows}
print(f"results in {out} (medians of {rounds} rounds)\n")
print("| server | saturated req/s (c=16) | p99 at saturation | server CPU per token | 1,000 req/s: p50 | p99 | non-2xx (all runs) | RSS peak | steal (sat / rate) |")
print("|---|---|---|---|---|---|---|---|---|")
for r in rows:
    rss = out / f"{r.removesuffix('-usage')}-rss-kb.txt"
    rss = f"{int(rss.read_text().strip()) / 1024:.1f} MB" if rss.exists() else "-"
    bad = sat[r]["bad"] + rate[r]["bad"]
    print(f"| {r} | {sat[r]['rps']:,.0f} | {sat[r]['p99']:.2f} ms | {sat[r]['cpu']:.1f} µs | {rate[r]['p50']:.2f} ms | "
          f"{rate[r]['p99']:.2f} ms | {bad} | {rss} | {sat[r]['steal']:.0f} % / {rate[r]['steal']:.0f} % |")
print("\nper round, saturated req/s and p99 at 1,000 req/s:")
for r in rows:
    rps = ", ".join(f"{x:,.0f}" for x in sat[r]["all_rps"])
    p99 = ", ".join(f"{x:.2f}" for x in rate[r]["all_p99"])
    print(f"  {r}: {rps} | {p99} ms")
for backend in ["sqlite", "postgres"]:
    off, on = sat[f"mcpg-auth-{backend}"], sat[f"mcpg-auth-{backend}-usage"]
    per_round = ", ".join(f"{b / a - 1:+.1%}" for a, b in zip(off["all_rps"], on["all_rps"]))
    print(f"\nusage reports on vs off, {backend}: {on['rps'] / off['rps'] - 1:+.1%} tokens/s "
          f"(medians; per round {per_round}), CPU per token {on['cpu']:.1f} vs {off['cpu']:.1f} µs")
for r in [r for r in rows if r.startswith("mcpg-auth") or r == "baseline-sqlite"]:
    ratios = [a / c for a, c in zip(sat[r]["all_rps"], sat["ceiling"]["all_rps"])]
    peers = [a / p for a, p in zip(sat[r]["all_rps"], sat["peer"]["all_rps"])]
    print(f"\n{r}: tokens per CPU second {sat['ceiling']['cpu'] / sat[r]['cpu']:.0%} of the ceiling's; "
          f"{sat[r]['rps'] / sat['peer']['rps']:.1f}x the peer, "
          f"{sat[r]['rps'] / sat['ceiling']['rps']:.0%} of the ceiling (medians); per round "
          + ", ".join(f"{x:.0%}" for x in ratios) + " of the ceiling, "
          + ", ".join(f"{x:.1f}x" for x in peers) + " the peer")
PY
