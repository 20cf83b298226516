#!/usr/bin/env bash
# Three mcpg-auth replicas on one PostgreSQL database behind HAProxy (not run in CI).
#
# Measures, in one run on this machine:
#   1. POST /v1/federation/token through HAProxy (round robin over the three replicas) and
#      straight to one replica, at saturation (16 connections) and at a fixed 1,000 req/s;
#   2. what a client sees while one replica is killed with `kill -9` and started again,
#      at a fixed rate, through two HAProxy frontends over the same replicas:
#        - "checks only": health checks (`GET /readyz` every 500 ms, down after 2 failures),
#          no retries: the requests sent to the dead replica before the checks notice fail;
#        - "checks + retry": the same plus `retry-on conn-failure empty-response` and
#          `option redispatch` (a token request is safe to send again: it carries no body
#          and changes nothing but counters), so a refused connection goes to another replica.
#      For each: requests, failures (non-2xx and connection errors), and when HAProxy marked
#      the replica down and up again, from its log.
# The replicas run as documented in docs/OPERATIONS.md: no key flags (one development root
# for the cluster, made by the first), one KEK, one --issuer (the balancer's URL), the app
# role under row-level security. Installs what it needs (haproxy from Debian, oha).
#
# Usage: bench/cluster-load.sh [DURATION] [KILL_RATE]   (default 10s, 500 req/s)
# Env:   MCPG_BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10s}"
KILL_RATE="${2:-500}"
PG_URL="${MCPG_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
OUT="bench/out/cluster-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
LB=8460 LB_RETRY=8461 PORTS=(8471 8472 8473)
DB="mcpg_cluster_$$" ROLE="mcpg_cluster_app_$$"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  psql "$PG_URL" -q -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "DROP ROLE IF EXISTS $ROLE" \
    >/dev/null 2>&1 || echo "warning: could not drop $DB and $ROLE" >&2
}
trap cleanup EXIT

need() { command -v "$1" >/dev/null 2>&1; }
if ! need haproxy; then
  echo "installing haproxy (apt-get install haproxy)…"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null
fi
need oha || { echo "installing oha (cargo install oha --locked)…"; cargo install oha --locked; }
cargo build --profile dist -q -p mcpg-auth --bin mcpg-auth
BIN=target/dist/mcpg-auth

wait_http() { # URL
  for _ in $(seq 1 200); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "timed out waiting for $1" >&2; return 1
}
json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
api() { # METHOD PATH BODY — through the balancer
  curl -fsS -X "$1" "http://127.0.0.1:$LB$2" -H "authorization: Bearer $ADMIN" \
    -H 'content-type: application/json' ${3:+-d "$3"}
}

# The database: the superuser migrates (as an owner would), the replicas run as $ROLE.
psql "$PG_URL" -q -c "CREATE DATABASE $DB" -c "CREATE ROLE $ROLE LOGIN PASSWORD 'bench'" >/dev/null
SERVER="${PG_URL#postgres://}"; SERVER="${SERVER#*@}"; SERVER="${SERVER%%/*}"
KEK_DIR=$(mktemp -d)
(umask 077; python3 -c 'import secrets; print(secrets.token_hex(32))' >"$KEK_DIR/kek")

declare -A REPLICA_PID
start_replica() { # N
  local n="$1" port="${PORTS[$1]}" dir="$OUT/replica-$1"
  mkdir -p "$dir"
  # --org-rps 0: the benchmark measures the cluster, not the per-org limit.
  MCPG_OPS_LISTEN="127.0.0.1:$((port + 100))" "$BIN" serve --listen "127.0.0.1:$port" \
    --data-dir "$dir/data" --bootstrap-token-file "$dir/bootstrap.token" \
    --issuer "http://127.0.0.1:$LB" --kek-file "$KEK_DIR/kek" --org-rps 0 \
    --database-url "postgres://$ROLE:bench@$SERVER/$DB" --migrate-database-url "${PG_URL%/*}/$DB" \
    >>"$OUT/replica-$n.log" 2>&1 &
  REPLICA_PID[$n]=$!; PIDS+=("$!")
  wait_http "http://127.0.0.1:$port/readyz"
}
start_replica 0
start_replica 1
start_replica 2
ADMIN=$(cat "$OUT/replica-0/bootstrap.token")

cat >"$OUT/haproxy.cfg" <<CFG
global
    log stderr format iso local0 info
defaults
    mode http
    log global
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    option httpchk GET /readyz
    option dontlog-normal
    default-server check inter 500ms fall 2 rise 2
frontend checks_only
    bind 127.0.0.1:$LB
    default_backend replicas
frontend checks_and_retry
    bind 127.0.0.1:$LB_RETRY
    default_backend replicas_retry
backend replicas
    balance roundrobin
    retries 0
    server r0 127.0.0.1:${PORTS[0]}
    server r1 127.0.0.1:${PORTS[1]}
    server r2 127.0.0.1:${PORTS[2]}
backend replicas_retry
    balance roundrobin
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response response-timeout
    server r0 127.0.0.1:${PORTS[0]}
    server r1 127.0.0.1:${PORTS[1]}
    server r2 127.0.0.1:${PORTS[2]}
CFG
haproxy -db -f "$OUT/haproxy.cfg" >"$OUT/haproxy.log" 2>&1 &
PIDS+=("$!")
wait_http "http://127.0.0.1:$LB/readyz"
sleep 1.5  # every server UP (rise 2 × 500 ms)

api POST /v1/orgs '{"slug":"bench","display_name":"Bench"}' >/dev/null
api PUT /v1/orgs/bench/license '{"tier":"enterprise","valid_for_days":365}' >/dev/null
api POST /v1/orgs/bench/workspaces '{"slug":"platform"}' >/dev/null
api POST /v1/orgs/bench/workspaces/platform/environments '{"slug":"prod"}' >/dev/null
CREDENTIAL=$(api POST /v1/orgs/bench/workspaces/platform/environments/prod/gateways \
  '{"name":"bench-gw"}' | json_field '["credential"]')

token_load() { # NAME URL oha-args…
  local name="$1" url="$2"; shift 2
  oha --no-tui --output-format json -m POST -H "authorization: Bearer $CREDENTIAL" "$@" \
    "$url/v1/federation/token" >"$OUT/$name.json"
}

echo "warming up…"
token_load warm "http://127.0.0.1:$LB" -z 3s -c 16
echo "throughput and latency…"
token_load lb-sat "http://127.0.0.1:$LB" -z "$DURATION" -c 16
token_load one-sat "http://127.0.0.1:${PORTS[0]}" -z "$DURATION" -c 16
token_load lb-rate "http://127.0.0.1:$LB" -z "$DURATION" -q 1000 -c 16 --latency-correction
token_load one-rate "http://127.0.0.1:${PORTS[0]}" -z "$DURATION" -q 1000 -c 16 --latency-correction

kill_test() { # NAME PORT — kill -9 replica 1 five seconds in, start it again at ten
  local name="$1" port="$2"
  echo "kill -9 under load through $name…"
  date -u +%s.%N >"$OUT/$name.start"
  token_load "$name" "http://127.0.0.1:$port" -z 20s -q "$KILL_RATE" -c 16 &
  local load=$!
  sleep 5
  date -u +%s.%N >"$OUT/$name.killed"
  kill -9 "${REPLICA_PID[1]}"
  sleep 5
  date -u +%s.%N >"$OUT/$name.restarted"
  start_replica 1
  wait "$load"
  sleep 2  # HAProxy sees it up again (rise 2) before the next test
}
kill_test kill-checks-only "$LB"
kill_test kill-checks-retry "$LB_RETRY"

python3 - "$OUT" <<'PY'
import json, pathlib, re, sys, datetime
out = pathlib.Path(sys.argv[1])
def load(name):
    data = json.loads((out / f"{name}.json").read_text())
    codes = data.get("statusCodeDistribution", {})
    errors = data.get("errorDistribution", {})
    ok = sum(v for k, v in codes.items() if k.startswith("2"))
    # oha cancels the requests still in flight when the duration ends: not a failure.
    cut = errors.pop("aborted due to deadline", 0)
    return dict(rps=data["summary"]["requestsPerSec"], p50=data["latencyPercentiles"]["p50"] * 1e3,
                p99=data["latencyPercentiles"]["p99"] * 1e3, ok=ok, cut=cut,
                failed=sum(codes.values()) - ok + sum(errors.values()), codes=codes, errors=errors)
print(f"results in {out}\n")
print("| path | saturated tokens/s (c=16) | p99 at saturation | 1,000 req/s: p50 | p99 |")
print("|---|---|---|---|---|")
for label, name in [("HAProxy → 3 replicas", "lb"), ("one replica, direct", "one")]:
    s, r = load(f"{name}-sat"), load(f"{name}-rate")
    print(f"| {label} | {s['rps']:,.0f} | {s['p99']:.2f} ms | {r['p50']:.2f} ms | {r['p99']:.2f} ms |")
log = (out / "haproxy.log").read_text(errors="replace")
def when(stamp):
    return float((out / stamp).read_text())
def transitions(backend):
    found = []
    for line in log.splitlines():
        m = re.match(r"(\S+) .*Server " + backend + r"/r1 is (DOWN|UP)", line)
        if not m:
            continue
        try:  # HAProxy also prints its warnings without a time stamp: skip those
            t = datetime.datetime.fromisoformat(m.group(1).replace("Z", "+00:00")).timestamp()
        except ValueError:
            continue
        found.append((m.group(2), t))
    return found
print("\nkill -9 of one replica at 5 s, started again at 10 s, 20 s of load at a fixed rate:\n")
print("| frontend | requests answered | failed | marked down after the kill | marked up after the restart |")
print("|---|---|---|---|---|")
for label, name, backend in [("checks only", "kill-checks-only", "replicas"),
                             ("checks + retry", "kill-checks-retry", "replicas_retry")]:
    k = load(name)
    killed, restarted = when(f"{name}.killed"), when(f"{name}.restarted")
    marks = transitions(backend)
    down = next((t - killed for s, t in marks if s == "DOWN" and t >= killed), None)
    up = next((t - restarted for s, t in marks if s == "UP" and t >= restarted), None)
    fmt = lambda x: "-" if x is None else f"{x:.2f} s"
    detail = ", ".join(f"{c}: {n}" for c, n in {**k["codes"], **k["errors"]}.items() if not c.startswith("2"))
    print(f"| {label} | {k['ok'] + k['failed']:,} | {k['failed']}{' (' + detail + ')' if detail else ''} "
          f"| {fmt(down)} | {fmt(up)} |")
PY
