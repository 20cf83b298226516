# Helpers shared by the load scripts in bench/ (sourced, not run). They expect OUT (the
# run's output directory), PIDS (processes to kill on exit) and PG_URL to be set.

need() { command -v "$1" >/dev/null 2>&1; }

wait_http() { # URL
  for _ in $(seq 1 100); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "timed out waiting for $1" >&2; return 1
}

json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

api() { # METHOD PATH [BODY] — the admin API of the service on $PORT with $ADMIN
  curl -fsS -X "$1" "http://127.0.0.1:$PORT$2" -H "authorization: Bearer $ADMIN" \
    -H 'content-type: application/json' ${3:+-d "$3"}
}

steal_ticks() { awk '/^cpu / {print $9}' /proc/stat; }
total_ticks() { awk '/^cpu / {print $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
# utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat; the
# command name in field 2 has no spaces for any of our servers).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
peak_rss_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }

# Starts mcpg-auth on BACKEND (sqlite | postgres: a fresh database, the service as a role
# under row-level security, the owner migrating) at PORT with EXTRA flags; sets AUTH_PID,
# ADMIN and PORT. The caller's PG_CLEANUP array collects what to drop at exit.
start_auth() { # BACKEND PORT BINARY [EXTRA…]
  local backend="$1" bin="$3"; PORT="$2"; shift 3
  local dir; dir=$(mktemp -d)
  local args=(serve --listen "127.0.0.1:$PORT" --data-dir "$dir" --issuer "http://127.0.0.1:$PORT"
              --bootstrap-token-file "$dir/bootstrap.token" "$@")
  if [ "$backend" = postgres ]; then
    local db="mcpg_bench_$$_$PORT" role="mcpg_bench_app_$$_$PORT"
    PG_CLEANUP+=(-c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "DROP ROLE IF EXISTS $role")
    psql "$PG_URL" -q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" \
      -c "DROP ROLE IF EXISTS $role" -c "CREATE ROLE $role LOGIN PASSWORD 'bench'" >/dev/null
    local server="${PG_URL#postgres://}"; server="${server#*@}"; server="${server%%/*}"
    args+=(--database-url "postgres://$role:bench@$server/$db" --migrate-database-url "${PG_URL%/*}/$db")
  fi
  MCPG_OPS_LISTEN=127.0.0.1:0 "$bin" "${args[@]}" >"$OUT/auth-$backend-$PORT.log" 2>&1 &
  AUTH_PID=$!; PIDS+=("$AUTH_PID")
  wait_http "http://127.0.0.1:$PORT/readyz"
  ADMIN=$(cat "$dir/bootstrap.token")
}

# The usual start of a load script: PG_URL (MCPG_BENCH_POSTGRES_URL or the local server),
# OUT = bench/out/NAME-<UTC time>, PIDS and PG_CLEANUP empty, and at exit every process in
# PIDS killed and the PostgreSQL databases and roles in PG_CLEANUP dropped.
bench_setup() { # NAME
  PG_URL="${MCPG_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
  OUT="bench/out/$1-$(date -u +%Y%m%dT%H%M%SZ)"
  mkdir -p "$OUT"
  PIDS=()
  PG_CLEANUP=()
  trap bench_cleanup EXIT
}

bench_cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ "${#PG_CLEANUP[@]}" -gt 0 ]; then
    sleep 0.5
    psql "$PG_URL" -q "${PG_CLEANUP[@]}" >/dev/null \
      || echo "warning: could not drop the benchmark's databases and roles" >&2
  fi
}

# Org `fleet` (enterprise, room for N + 10 gateways) with workspace `platform` and
# environment `prod`, where the fleet scripts register their gateways.
fleet_org() { # N
  api POST /v1/orgs '{"slug":"fleet","display_name":"Fleet"}' >/dev/null
  api PUT /v1/orgs/fleet/license \
    "{\"tier\":\"enterprise\",\"valid_for_days\":365,\"limits\":{\"max_gateways\":$(($1 + 10))}}" >/dev/null
  api POST /v1/orgs/fleet/workspaces '{"slug":"platform"}' >/dev/null
  api POST /v1/orgs/fleet/workspaces/platform/environments '{"slug":"prod"}' >/dev/null
}
