#!/usr/bin/env bash
# The refresh storm (not run in CI): a fleet returning to mcpg-auth after a day of outage.
#
# Registers one org with BIG gateways (default 50,000) and SMALL_ORGS orgs with 100 each
# (default 500), plus a quiet org with one gateway that is not part of the storm, on one
# `mcpg-auth` (dist profile, SQLite, the default per-org limits: 100 token requests/s and a
# burst of 100 per org; `--admin-rps 0` only so that creating 500 orgs takes seconds). Then
# runs the simulator `storm` (an example of mcpg-auth, which follows mcpg-entitlements'
# own backoff rules; see its header for the clock) in each MODE, restarting the service
# between modes so that every run starts from the same state.
#
# Reports, per mode: the time until every gateway holds a fresh token (per org size), the
# peak of 429s per second, 5xx (must be 0), and the p99 of the quiet org's tokens and of
# /readyz during the storm. Timelines in $OUT/timeline-MODE.csv.
#
# Usage: bench/storm.sh [BIG] [SMALL_ORGS] [MODES]   (default 50000 500 "together spread")
# Env:   MCPG_BENCH_BIN=DIR  mcpg-auth and storm from DIR instead of this checkout's build
#        MCPG_STORM_ARGS     more flags for the simulator (e.g. "--max-time 15m")
set -euo pipefail
cd "$(dirname "$0")/.."
BIG="${1:-50000}"
SMALL_ORGS="${2:-500}"
MODES="${3:-together spread}"
PG_URL="${MCPG_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
OUT="bench/out/storm-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
PIDS=()
PG_CLEANUP=()
# shellcheck source=bench/lib.sh
. bench/lib.sh
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# MCPG_BENCH_BIN=DIR runs mcpg-auth and storm from DIR (an earlier build, for a before/after).
BIN="${MCPG_BENCH_BIN:-}"
if [ -z "$BIN" ]; then
  cargo build --profile dist -q -p mcpg-auth --bin mcpg-auth --example storm
  # Copied: a build during the run must not change the binaries between modes.
  BIN="$OUT/bin"; mkdir -p "$BIN"
  cp target/dist/mcpg-auth target/dist/examples/storm "$BIN/"
fi
STORM="$BIN/storm"
cargo build --profile dist -q -p mcpg-cli --bin mcpg-ctl
CTL=target/dist/mcpg-ctl
DATA=$(mktemp -d)

org() { # SLUG GATEWAYS → credentials appended to $OUT/fleet.jsonl (with the org)
  local slug="$1" count="$2"
  api POST /v1/orgs "{\"slug\":\"$slug\",\"display_name\":\"$slug\"}" >/dev/null
  api PUT "/v1/orgs/$slug/license" \
    "{\"tier\":\"enterprise\",\"valid_for_days\":365,\"limits\":{\"max_gateways\":$((count + 10))}}" >/dev/null
  api POST "/v1/orgs/$slug/workspaces" '{"slug":"platform"}' >/dev/null
  api POST "/v1/orgs/$slug/workspaces/platform/environments" '{"slug":"prod"}' >/dev/null
  MCPG_SERVER="http://127.0.0.1:$PORT" MCPG_TOKEN="$ADMIN" \
    "$CTL" gateway register "$slug/platform/prod" gw --count "$count" \
    --credentials-file "$OUT/creds-$slug.jsonl" >/dev/null
}

serve() { # the service on the data directory kept between modes
  MCPG_OPS_LISTEN=127.0.0.1:0 "$BIN/mcpg-auth" serve --listen 127.0.0.1:8466 \
    --data-dir "$DATA" --issuer http://127.0.0.1:8466 --admin-rps 0 \
    --bootstrap-token-file "$DATA/bootstrap.token" >>"$OUT/auth.log" 2>&1 &
  AUTH_PID=$!; PIDS+=("$AUTH_PID"); PORT=8466
  wait_http "http://127.0.0.1:$PORT/readyz"
  ADMIN=$(cat "$DATA/bootstrap.token")
}

serve
echo "== registering: 1 org of $BIG gateways, $SMALL_ORGS orgs of 100, a quiet org of 1…"
t0=$(date +%s)
org big "$BIG"
for i in $(seq 1 "$SMALL_ORGS"); do org "small$i" 100; done
org quiet 1
python3 - "$OUT" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
with open(out / "fleet.jsonl", "w") as fleet:
    for path in sorted(out.glob("creds-*.jsonl")):
        org = path.stem[len("creds-"):]
        if org == "quiet":
            continue
        for line in path.read_text().splitlines():
            if line.strip():
                fleet.write(json.dumps({"org": org, "credential": json.loads(line)["credential"]}) + "\n")
quiet = json.loads((out / "creds-quiet.jsonl").read_text().splitlines()[0])["credential"]
(out / "quiet.txt").write_text(quiet)
PY
echo "   registered in $(( $(date +%s) - t0 )) s"

for mode in $MODES; do
  kill "$AUTH_PID"; wait "$AUTH_PID" 2>/dev/null || true
  serve   # a fresh process: empty limiters and caches, as after an outage
  echo "== storm, mode $mode…"
  "$STORM" --url "http://127.0.0.1:$PORT" --fleet "$OUT/fleet.jsonl" \
    --quiet-credential "$(cat "$OUT/quiet.txt")" --mode "$mode" \
    --timeline "$OUT/timeline-$mode.csv" ${MCPG_STORM_ARGS:-} >"$OUT/storm-$mode.json"
  echo "   peak RSS $(( $(peak_rss_kb "$AUTH_PID") / 1024 )) MB"
  python3 - "$OUT/storm-$mode.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"   {r['fresh']:,} of {r['gateways']:,} fresh; all after {r['all_fresh_after_s']} s; "
      f"peak 429/s {r['peak_429_per_second']:,}; 5xx {r['server_errors']}; statuses {r['statuses']}")
for g in r["by_org_size"]:
    print(f"   {g['orgs']} org(s) of {g['gateways_per_org']:,}: all fresh after {g['all_fresh_after_s']} s")
q, p = r["quiet_org_token_ms"], r["readyz_ms"]
print(f"   quiet org tokens: p50 {q['p50']} ms, p99 {q['p99']} ms, max {q['max']} ms ({q['count']} ok, {q['not_ok']} not)")
print(f"   /readyz:          p50 {p['p50']} ms, p99 {p['p99']} ms, max {p['max']} ms ({p['count']} ok, {p['not_ok']} not)")
PY
done
echo "results in $OUT"
