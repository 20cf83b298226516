#!/usr/bin/env bash
# The fleet benchmark (not run in CI): the token path as a fleet runs it.
#
# A real fleet's gateways each refresh once every 8 hours, so every token request misses
# the grant cache. This registers N gateways (default 100,000) through the bulk path
# (`mcpg-ctl gateway register … --count N`, batches of 1,000; the time is reported), then
# drives POST /v1/federation/token with the load generator `fleet_load` (an example of
# mcpg-auth), request j carrying credential j mod N, on SQLite and on PostgreSQL (the
# service as a role under row-level security). In the same run, on the same client:
#   - one gateway asking again and again (the grant-cache hit path);
#   - the sign-only ceiling (`sign_ceiling`: an axum handler that signs a fixed claim set);
#   - each at saturation (16 connections) and at a fixed 1,000 req/s (latency from each
#     request's scheduled time).
# Reports tokens/s, p50/p99, the server's CPU per token, its peak RSS, and (when `perf`
# may profile it) where a miss spends its time, in $OUT/perf-*.txt.
#
# Since the credential directory (infra/directory.rs), every known credential is answered
# from memory and the grant cache serves only what the directory cannot (an org that just
# changed); before it, a walk of N credentials had to take longer than --grant-cache-ttl
# (5 s) for every request to miss. The output also says the peak RSS after registering.
#
# Usage: bench/fleet-load.sh [N] [DURATION] [ROUNDS]   (default 100000 10s 3)
# Env:   MCPG_BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres)
#        MCPG_BENCH_BACKENDS (default "sqlite postgres")
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-100000}"
DURATION="${2:-10s}"
ROUNDS="${3:-3}"
PG_URL="${MCPG_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
BACKENDS="${MCPG_BENCH_BACKENDS:-sqlite postgres}"
OUT="bench/out/fleet-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
PIDS=()
PG_CLEANUP=()
# shellcheck source=bench/lib.sh
. bench/lib.sh
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ "${#PG_CLEANUP[@]}" -gt 0 ]; then
    sleep 0.5
    psql "$PG_URL" -q "${PG_CLEANUP[@]}" >/dev/null \
      || echo "warning: could not drop the benchmark's databases and roles" >&2
  fi
}
trap cleanup EXIT

cargo build --profile dist -q -p mcpg-auth --bin mcpg-auth --example sign_ceiling --example fleet_load
cargo build --profile dist -q -p mcpg-cli --bin mcpg-ctl
LOAD=target/dist/examples/fleet_load
CTL=target/dist/mcpg-ctl

target/dist/examples/sign_ceiling 127.0.0.1:8464 >"$OUT/ceiling.log" 2>&1 & PIDS+=($!); CEILING_PID=$!
sleep 0.5

run() { # NAME PID URL CREDENTIALS LOAD-ARGS… → $OUT/NAME.json with the server's CPU ticks
  local name="$1" pid="$2" url="$3" creds="$4"; shift 4
  local c0; c0=$(cpu_ticks "$pid")
  "$LOAD" --url "$url" --credentials "$creds" --duration "$DURATION" "$@" >"$OUT/$name.json"
  python3 - "$OUT/$name.json" "$(( $(cpu_ticks "$pid") - c0 ))" <<'PY'
import json, sys
path, ticks = sys.argv[1], int(sys.argv[2])
data = json.load(open(path)); data["server_cpu_ticks"] = ticks
json.dump(data, open(path, "w"))
PY
}

for backend in $BACKENDS; do
  port=8461; [ "$backend" = postgres ] && port=8462
  echo "== $backend: starting, registering $N gateways…"
  start_auth "$backend" "$port" target/dist/mcpg-auth --org-rps 0
  pid=$AUTH_PID
  fleet_org "$N"
  creds="$OUT/credentials-$backend.jsonl"
  t0=$(date +%s.%N)
  MCPG_SERVER="http://127.0.0.1:$port" MCPG_TOKEN="$ADMIN" \
    "$CTL" gateway register fleet/platform/prod gw --count "$N" --credentials-file "$creds" >/dev/null
  python3 -c "print(f'{$(date +%s.%N) - $t0:.1f}')" >"$OUT/$backend-registration-seconds.txt"
  peak_rss_kb "$pid" >"$OUT/$backend-rss-after-registration-kb.txt"
  echo "   registered in $(cat "$OUT/$backend-registration-seconds.txt") s; peak RSS so far $(( $(cat "$OUT/$backend-rss-after-registration-kb.txt") / 1024 )) MB"
  url="http://127.0.0.1:$port/v1/federation/token"
  "$LOAD" --url "$url" --credentials "$creds" --duration 3s >/dev/null   # warm-up
  for round in $(seq 1 "$ROUNDS"); do
    echo "   round $round of $ROUNDS…"
    run "$backend-one-sat-$round" "$pid" "$url" "$creds" --credentials-limit 1
    run "$backend-fleet-sat-$round" "$pid" "$url" "$creds" --offset $((round * 7919))
    run "$backend-ceiling-sat-$round" "$CEILING_PID" http://127.0.0.1:8464/v1/federation/token "$creds" --credentials-limit 1
    run "$backend-fleet-rate-$round" "$pid" "$url" "$creds" --rate 1000 --offset $((round * 104729))
    run "$backend-ceiling-rate-$round" "$CEILING_PID" http://127.0.0.1:8464/v1/federation/token "$creds" --credentials-limit 1 --rate 1000
  done
  peak_rss_kb "$pid" >"$OUT/$backend-rss-kb.txt"
  if need perf && perf record -q -o /dev/null -p "$pid" -- sleep 0.1 >/dev/null 2>&1; then
    echo "   profiling the miss path…"
    perf record -q -F 999 -g -o "$OUT/perf-$backend.data" -p "$pid" -- sleep 5 >/dev/null 2>&1 &
    perf_pid=$!
    "$LOAD" --url "$url" --credentials "$creds" --duration 6s --offset 31337 >/dev/null
    wait "$perf_pid" || true
    for sort in comm dso symbol; do
      echo "-- by $sort"
      perf report -q -i "$OUT/perf-$backend.data" --stdio --no-children --sort "$sort" \
        --percent-limit 1 -g none 2>/dev/null | sed -E 's/[[:space:]]+-[[:space:]]+-[[:space:]]*$//; s/[[:space:]]+$//' \
        | grep -v '^$' | head -25
    done >"$OUT/perf-$backend.txt" || true
  fi
  kill "$pid"; wait "$pid" 2>/dev/null || true
done

python3 - "$OUT" "$ROUNDS" "$(getconf CLK_TCK)" "$N" "$BACKENDS" <<'PY'
import json, sys, pathlib, statistics
out, rounds, tick, n, backends = pathlib.Path(sys.argv[1]), int(sys.argv[2]), 1e6 / int(sys.argv[3]), int(sys.argv[4]), sys.argv[5].split()
def load(name):
    runs = [json.loads((out / f"{name}-{r}.json").read_text()) for r in range(1, rounds + 1)]
    def med(f): return statistics.median(f(r) for r in runs)
    return dict(
        rps=med(lambda r: r["requests_per_second"]),
        p50=med(lambda r: r["latency_ms"]["p50"]), p99=med(lambda r: r["latency_ms"]["p99"]),
        cpu=med(lambda r: r["server_cpu_ticks"] * tick / max(r["requests"], 1)),
        bad=sum(r["requests"] - r["statuses"].get("200", 0) + r["errors"] for r in runs),
        all_rps=[r["requests_per_second"] for r in runs])
print(f"results in {out} (medians of {rounds} rounds, {n:,} gateways)\n")
print("| backend | path | saturated tokens/s (c=16) | server CPU per token | 1,000 req/s: p50 | p99 | non-200 | peak RSS | registration |")
print("|---|---|---|---|---|---|---|---|---|")
for b in backends:
    one, fleet, ceil = load(f"{b}-one-sat"), load(f"{b}-fleet-sat"), load(f"{b}-ceiling-sat")
    frate, crate = load(f"{b}-fleet-rate"), load(f"{b}-ceiling-rate")
    rss = int((out / f"{b}-rss-kb.txt").read_text()) / 1024
    reg_path = out / f"{b}-rss-after-registration-kb.txt"
    reg_rss = int(reg_path.read_text()) / 1024 if reg_path.exists() else float("nan")
    reg = (out / f"{b}-registration-seconds.txt").read_text().strip()
    print(f"| {b} | one gateway (cache hits) | {one['rps']:,.0f} | {one['cpu']:.1f} µs | | | {one['bad']} | | |")
    print(f"| {b} | fleet (every request a miss) | {fleet['rps']:,.0f} | {fleet['cpu']:.1f} µs | {frate['p50']:.2f} ms | {frate['p99']:.2f} ms | {fleet['bad'] + frate['bad']} | {rss:.1f} MB | {reg} s |")
    print(f"| {b} | sign-only ceiling | {ceil['rps']:,.0f} | {ceil['cpu']:.1f} µs | {crate['p50']:.2f} ms | {crate['p99']:.2f} ms | {ceil['bad'] + crate['bad']} | | |")
    ratios = ", ".join(f"{f / o:.0%}" for f, o in zip(fleet["all_rps"], one["all_rps"]))
    print(f"\n{b}: fleet / one gateway = {fleet['rps'] / one['rps']:.0%} (per round: {ratios}); "
          f"fleet / ceiling = {fleet['rps'] / ceil['rps']:.0%}; "
          f"peak RSS {reg_rss:.1f} MB after registering, {rss:.1f} MB at the end\n")
PY
for f in "$OUT"/perf-*.txt; do [ -s "$f" ] && { echo "== $f"; head -40 "$f"; }; done
exit 0
