#!/usr/bin/env bash
# The soak (not run in CI): MINUTES (default 30) at RATE (default 1,000) token requests per
# second over N (default 100,000) gateways, every request a different gateway, while a
# management client changes the fleet org's license once a second (max_gateways goes up
# and down by one: each change is a committed license change every replica must apply).
# One `mcpg-auth` (dist profile) on BACKEND (sqlite | postgres, default sqlite).
#
# Every minute: the service's RSS and peak RSS, its open file descriptors and threads,
# that minute's token latencies (p50/p99/max, from each request's scheduled time, by the
# fleet's load generator `fleet_load --rate`), non-200 answers, and the license changes
# that succeeded. Prints the series as a Markdown table; raw data in $OUT.
#
# Usage: bench/soak.sh [MINUTES] [RATE] [N] [BACKEND]   (default 30 1000 100000 sqlite)
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES="${1:-30}"
RATE="${2:-1000}"
N="${3:-100000}"
BACKEND="${4:-sqlite}"
PG_URL="${MCPG_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
OUT="bench/out/soak-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
PIDS=()
PG_CLEANUP=()
# shellcheck source=bench/lib.sh
. bench/lib.sh
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ "${#PG_CLEANUP[@]}" -gt 0 ]; then
    sleep 0.5
    psql "$PG_URL" -q "${PG_CLEANUP[@]}" >/dev/null || true
  fi
}
trap cleanup EXIT

cargo build --profile dist -q -p mcpg-auth --bin mcpg-auth --example fleet_load
cargo build --profile dist -q -p mcpg-cli --bin mcpg-ctl
LOAD=target/dist/examples/fleet_load

start_auth "$BACKEND" 8467 target/dist/mcpg-auth
pid=$AUTH_PID
api POST /v1/orgs '{"slug":"fleet","display_name":"Fleet"}' >/dev/null
license() { # MAX_GATEWAYS
  api PUT /v1/orgs/fleet/license \
    "{\"tier\":\"enterprise\",\"valid_for_days\":365,\"limits\":{\"max_gateways\":$1}}" >/dev/null
}
license $((N + 10))
api POST /v1/orgs/fleet/workspaces '{"slug":"platform"}' >/dev/null
api POST /v1/orgs/fleet/workspaces/platform/environments '{"slug":"prod"}' >/dev/null
creds="$OUT/credentials.jsonl"
echo "== $BACKEND: registering $N gateways…"
MCPG_SERVER="http://127.0.0.1:$PORT" MCPG_TOKEN="$ADMIN" \
  target/dist/mcpg-ctl gateway register fleet/platform/prod gw --count "$N" --credentials-file "$creds" >/dev/null

# A license change every second, for as long as the soak runs.
(
  i=0
  while true; do
    if license $((N + 10 + i % 2)) 2>/dev/null; then echo ok; else echo failed; fi
    i=$((i + 1)); sleep 1
  done
) >"$OUT/license-changes.log" &
PIDS+=($!)

url="http://127.0.0.1:$PORT/v1/federation/token"
offset=0
echo "minute,rss_mb,peak_rss_mb,fds,threads,requests,non_200,p50_ms,p99_ms,max_ms,license_changes_ok,license_changes_failed" >"$OUT/series.csv"
echo "== soak: $MINUTES min at $RATE tokens/s"
for minute in $(seq 1 "$MINUTES"); do
  "$LOAD" --url "$url" --credentials "$creds" --rate "$RATE" --duration 60s \
    --connections 16 --offset "$offset" >"$OUT/minute-$minute.json"
  offset=$(json_field '["next_offset"]' <"$OUT/minute-$minute.json")
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  hwm=$(peak_rss_kb "$pid")
  fds=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 | wc -l)
  threads=$(awk '/Threads/ {print $2}' "/proc/$pid/status")
  changes_ok=$(grep -c '^ok$' "$OUT/license-changes.log" || true)
  changes_failed=$(grep -c '^failed$' "$OUT/license-changes.log" || true)
  python3 - "$OUT/minute-$minute.json" "$minute" "$rss" "$hwm" "$fds" "$threads" "$changes_ok" "$changes_failed" >>"$OUT/series.csv" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
minute, rss, hwm, fds, threads, ok, failed = sys.argv[2:9]
non_200 = r["requests"] - r["statuses"].get("200", 0) + r["errors"]
l = r["latency_ms"]
print(f"{minute},{int(rss)/1024:.1f},{int(hwm)/1024:.1f},{fds},{threads},{r['requests']},{non_200},{l['p50']},{l['p99']},{l['max']},{ok},{failed}")
PY
  tail -1 "$OUT/series.csv"
done

python3 - "$OUT/series.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print("\n| minute | RSS | peak RSS | fds | threads | tokens | non-200 | p50 | p99 | max | license changes ok / failed |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['minute']} | {r['rss_mb']} MB | {r['peak_rss_mb']} MB | {r['fds']} | {r['threads']} | {int(r['requests']):,} | {r['non_200']} | {r['p50_ms']} ms | {r['p99_ms']} ms | {r['max_ms']} ms | {r['license_changes_ok']} / {r['license_changes_failed']} |")
PY
echo "results in $OUT"
