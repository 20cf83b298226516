#!/usr/bin/env bash
# Where a fleet's memory goes over time (not run in CI): registers N gateways (default
# 100,000) through the bulk path, then saturates the fleet path (every request a different
# gateway, `fleet_load`, 16 connections) for SECONDS, printing the server's RSS every second
# and the peak at the end. The usage flush (every 10 s) and the housekeeping show up as
# the steps of the series. SQLite unless BACKEND is postgres.
#
# Usage: bench/fleet-rss.sh [N] [SECONDS] [BACKEND]   (default 100000 25 sqlite)
# Env:   MCPG_BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres);
#        the allocator's own variables (MIMALLOC_*) pass through to the server.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-100000}"
SECONDS_OF_LOAD="${2:-25}"
BACKEND="${3:-sqlite}"
# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_setup fleet-rss

cargo build --profile dist -q -p mcpg-auth --bin mcpg-auth --example fleet_load
cargo build --profile dist -q -p mcpg-cli --bin mcpg-ctl
rss_mb() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }

start_auth "$BACKEND" 8466 target/dist/mcpg-auth --org-rps 0
pid=$AUTH_PID
echo "started: RSS $(rss_mb "$pid") MB"
fleet_org "$N"
creds="$OUT/credentials.jsonl"
MCPG_SERVER="http://127.0.0.1:$PORT" MCPG_TOKEN="$ADMIN" target/dist/mcpg-ctl gateway register \
  fleet/platform/prod gw --count "$N" --credentials-file "$creds" >/dev/null
echo "registered $N gateways: RSS $(rss_mb "$pid") MB, peak $(( $(peak_rss_kb "$pid") / 1024 )) MB"
target/dist/examples/fleet_load --url "http://127.0.0.1:$PORT/v1/federation/token" \
  --credentials "$creds" --duration "${SECONDS_OF_LOAD}s" >"$OUT/load.json" &
load=$!
echo "| t (s) | RSS (MB) |"
echo "|---|---|"
for t in $(seq 1 "$SECONDS_OF_LOAD"); do
  sleep 1
  echo "| $t | $(rss_mb "$pid") |"
done
wait "$load"
python3 -c "import json; d = json.load(open('$OUT/load.json')); print(f\"{d['requests_per_second']:,.0f} tokens/s, {d['requests'] - d['statuses'].get('200', 0) + d['errors']} not 200\")"
sleep 11
echo "after the next flush: RSS $(rss_mb "$pid") MB; peak RSS $(( $(peak_rss_kb "$pid") / 1024 )) MB"
