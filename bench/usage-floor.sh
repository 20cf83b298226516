#!/usr/bin/env bash
# What a usage report costs on the token path, split into carrying a body and reading the
# report (not run in CI). One mcpg-auth (dist profile, SQLite, --org-rps 0), one gateway,
# 16 connections at saturation, three cases interleaved in each round:
#   none    no body (the unreported token request)
#   padded  a body of exactly the report's size with no report in it
#           ({"instance":…,"usage":null} padded with spaces): the floor of any report
#   report  bench/usage-report.json (ten plugins)
# Prints tokens/s and the server's CPU time per token for each, then each case against no
# body, paired within its round (the median of the rounds' ratios).
#
# Usage: bench/usage-floor.sh [SECONDS] [ROUNDS]   (default 8 s, 3 rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_CASE="${1:-8}"
ROUNDS="${2:-3}"
command -v oha >/dev/null 2>&1 || { echo "installing oha (cargo install oha --locked)…"; cargo install oha --locked; }
cargo build --profile dist -q -p mcpg-auth --bin mcpg-auth
dir=$(mktemp -d)
PORT=8491
MCPG_OPS_LISTEN=127.0.0.1:0 target/dist/mcpg-auth serve --listen "127.0.0.1:$PORT" \
  --data-dir "$dir" --issuer "http://127.0.0.1:$PORT" \
  --bootstrap-token-file "$dir/bootstrap.token" --org-rps 0 >"$dir/log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do curl -fsS -o /dev/null "http://127.0.0.1:$PORT/readyz" 2>/dev/null && break; sleep 0.1; done
ADMIN=$(cat "$dir/bootstrap.token")
api() {
  curl -fsS -X "$1" "http://127.0.0.1:$PORT$2" -H "authorization: Bearer $ADMIN" \
    -H 'content-type: application/json' ${3:+-d "$3"}
}
api POST /v1/orgs '{"slug":"bench","display_name":"Bench"}' >/dev/null
api PUT /v1/orgs/bench/license '{"tier":"enterprise","valid_for_days":365}' >/dev/null
api POST /v1/orgs/bench/workspaces '{"slug":"platform"}' >/dev/null
api POST /v1/orgs/bench/workspaces/platform/environments '{"slug":"prod"}' >/dev/null
CRED=$(api POST /v1/orgs/bench/workspaces/platform/environments/prod/gateways \
  '{"name":"bench-gw"}' | python3 -c "import json,sys; print(json.load(sys.stdin)['credential'])")
python3 - "$dir/padded.json" <<'PY'
import json, sys
report = open("bench/usage-report.json").read().strip()
body = json.dumps({"instance": "bench-pod-1", "usage": None})
open(sys.argv[1], "w").write(body[:-1] + " " * (len(report) - len(body)) + "}")
PY
URL="http://127.0.0.1:$PORT/v1/federation/token"
cpu() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))
oha --no-tui -z 3s -c 16 -m POST -H "authorization: Bearer $CRED" "$URL" >/dev/null
for round in $(seq 1 "$ROUNDS"); do
  for case in none padded report; do
    body=()
    [ "$case" = padded ] && body=(-H 'content-type: application/json' -D "$dir/padded.json")
    [ "$case" = report ] && body=(-H 'content-type: application/json' -D bench/usage-report.json)
    c0=$(cpu)
    read -r rps n < <(oha --no-tui --output-format json -z "${SECONDS_PER_CASE}s" -c 16 -m POST \
      -H "authorization: Bearer $CRED" "${body[@]}" "$URL" \
      | python3 -c "import json,sys; d=json.load(sys.stdin); print(int(d['summary']['requestsPerSec']), sum(d['statusCodeDistribution'].values()))")
    c1=$(cpu)
    python3 -c "print(f'round $round, $case: $rps tokens/s, {($c1 - $c0) * $TICK_US / $n:.1f} µs of server CPU per token')"
    echo "$round $case $rps $(( (c1 - c0) * TICK_US )) $n" >>"$dir/rounds"
  done
done
# On a shared VM the machine's speed drifts between rounds more than a report costs: each
# round's cases are compared with each other (paired), and the pairs summarised by their
# median.
python3 - "$dir/rounds" <<'PY'
import statistics, sys
rounds = {}
for line in open(sys.argv[1]):
    r, case, rps, cpu_us, n = line.split()
    rounds.setdefault(r, {})[case] = (int(rps), int(cpu_us) / int(n))
print(f"\npaired per round, median of {len(rounds)} rounds (tokens/s; server CPU per token):")
for case in ("padded", "report"):
    rps = [c[case][0] / c["none"][0] - 1 for c in rounds.values()]
    cpu = [c[case][1] - c["none"][1] for c in rounds.values()]
    print(f"  {case} vs none: {statistics.median(rps):+.1%} (rounds "
          + ", ".join(f"{x:+.1%}" for x in rps)
          + f"); {statistics.median(cpu):+.1f} µs")
PY
