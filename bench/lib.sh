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
