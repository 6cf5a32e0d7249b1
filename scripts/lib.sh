# shellcheck shell=bash
# Shared helpers for the scripts in this folder. Source it; it sets strict mode
# so every script fails fast on the first error instead of carrying on half-done.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

die()  { echo "$(basename "$0"): error: $*" >&2; exit 1; }
note() { echo "$(basename "$0"): $*" >&2; }

# Runs a command quietly; on failure shows what it printed, so success stays silent
# but a failure is still explainable from the log alone.
quiet() {
  local out
  if ! out="$("$@" 2>&1)"; then
    echo "$out" >&2
    die "command failed: $*"
  fi
}

# Polls a check command until it succeeds or the deadline (seconds) passes.
wait_for() {
  local what="$1" secs="$2"; shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < end)) || die "$what did not answer within ${secs}s"
    sleep 0.5
  done
}

redis_up()   { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
# ping succeeds once the server answers, even if the login is refused.
mariadb_up() { mariadb-admin --protocol=tcp -h127.0.0.1 -P3306 -uroot ping >/dev/null 2>&1; }

# The MariaDB account the tests and `scripts/serve` use: the project's own, allowed only
# the project's databases (chat_service_*, chat_system_*), made by scripts/start-backends.
# No other account is changed. tests/support/mod.rs names the same.
LOCAL_DB_USER=chat_service_local
LOCAL_DB_PASSWORD=chat-service-local
db_local() { mariadb --protocol=tcp -h127.0.0.1 -P3306 -u"$LOCAL_DB_USER" -p"$LOCAL_DB_PASSWORD" "$@"; }
mariadb_local_user() { db_local -e 'select 1' >/dev/null 2>&1; }
# `mysql_url` for a local database, as the service is given it.
local_mysql_url() { echo "mysql://$LOCAL_DB_USER:$LOCAL_DB_PASSWORD@127.0.0.1:3306/$1"; }

# --- The machine's Redis tripwire (scripts/test) --------------------------------------
# The test suite runs against Redis servers of its own and must never touch the machine's
# Redis on 127.0.0.1:6379. Around the suite, scripts/test checks that it did not:
#  - tripwire_start plants a key with a random value (and a day's expiry, should the
#    check never run) in each of the Redis's databases, reads its connection count, and
#    starts a sampler that, every 0.2 s, looks for a TCP connection to port 6379 held by
#    a process of the test command's own (its descendants);
#  - tripwire_check stops the sampler, reads the count again, checks every planted key
#    still holds its value and removes them. A key gone or changed, a restart, or a
#    connection seen from the suite is a violation (exit status 1). Connections by other
#    clients meanwhile (the count less the tripwire's own) are reported, not failed on:
#    the count cannot tell whose they are, and a busy machine has them.
# Both print one line, for the closing line; their state is in the directory given.
tripwire_cli() { redis-cli -h 127.0.0.1 -p 6379 "$@"; }

# Processes whose ancestors include pid $1.
tripwire_descendants() {
  ps -e -o pid=,ppid= | awk -v root="$1" '
    { parent[$1] = $2 }
    END { for (p in parent) { q = parent[p]; while (q != root && q in parent && q > 1) q = parent[q]; if (q == root) print p } }'
}

# Runs until killed: writes each process under pid $1 seen holding a TCP connection to
# port 6379 to file $2.
tripwire_sampler() {
  local root=$1 out=$2 inode pid
  local -A known=()
  set +e
  while :; do
    # /proc/net/tcp*: remote address $3 (hex port 18EB = 6379), state $4 (01 established,
    # 02 connecting), inode $10.
    for inode in $(awk 'FNR > 1 && $3 ~ /:18EB$/ && ($4 == "01" || $4 == "02") { print $10 }' \
                     /proc/net/tcp /proc/net/tcp6 2>/dev/null); do
      [[ -n "${known[$inode]:-}" || "$inode" == 0 ]] && continue
      known[$inode]=1
      for pid in $(tripwire_descendants "$root"); do
        if [[ -n "$(find "/proc/$pid/fd" -maxdepth 1 -lname "socket:\[$inode\]" -print -quit 2>/dev/null)" ]]; then
          echo "pid $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-160)" >>"$out"
        fi
      done
    done
    sleep 0.2
  done
}

# `INFO server` and `INFO stats` in one connection: "run_id total_connections_received".
tripwire_info() {
  printf 'INFO server\nINFO stats\n' | tripwire_cli | tr -d '\r' |
    awk -F: '$1 == "run_id" { id = $2 } $1 == "total_connections_received" { n = $2 } END { print id, n }'
}

tripwire_start() {
  local dir=$1 databases n value
  mkdir -p "$dir"
  : >"$dir/planted"; : >"$dir/seen"
  databases="$(tripwire_cli CONFIG GET databases 2>/dev/null | sed -n 2p)"
  [[ "$databases" =~ ^[0-9]+$ ]] || databases=16
  echo "chat-service:test-command-tripwire:$$" >"$dir/key"
  for ((n = 0; n < databases; n++)); do
    value="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
    echo "$n $value" >>"$dir/planted"
  done
  # One connection: every SELECT and SET answers OK (NX: a key of that name is not ours).
  awk -v key="$(cat "$dir/key")" '{ printf "SELECT %d\nSET %s %s NX EX 86400\n", $1, key, $2 }' \
    "$dir/planted" | tripwire_cli | tr -d '\r' >"$dir/planted.out"
  [[ "$(grep -cx OK "$dir/planted.out")" == $((2 * databases)) ]] ||
    die "the tripwire could not plant its keys in the machine's Redis: $(sort -u "$dir/planted.out" | tr '\n' ' ')"
  tripwire_info >"$dir/before"
  tripwire_sampler "$$" "$dir/seen" &
  echo $! >"$dir/sampler"
  echo "the machine's Redis (127.0.0.1:6379): a key planted in each of its $databases databases"
}

# Removes the planted keys (also when the run is cut short).
tripwire_remove() {
  local dir=$1
  [[ -f "$dir/sampler" ]] && { kill "$(cat "$dir/sampler")" 2>/dev/null || true; wait "$(cat "$dir/sampler")" 2>/dev/null || true; rm -f "$dir/sampler"; }
  [[ -s "$dir/planted" ]] || return 0
  awk -v key="$(cat "$dir/key")" '{ printf "SELECT %d\nDEL %s\n", $1, key }' "$dir/planted" |
    tripwire_cli >/dev/null 2>&1 || true
  : >"$dir/planted"
}

tripwire_check() {
  local dir=$1 before after problems=() n value got others
  kill "$(cat "$dir/sampler")" 2>/dev/null || true
  wait "$(cat "$dir/sampler")" 2>/dev/null || true
  rm -f "$dir/sampler"
  read -r id_before count_before <"$dir/before"
  read -r id_after count_after < <(tripwire_info)
  [[ "$id_after" == "$id_before" ]] || problems+=("it restarted during the suite (run_id $id_before, now $id_after)")
  # In a second connection, after the count: each planted key's value, one line each.
  awk -v key="$(cat "$dir/key")" '{ printf "SELECT %d\nGET %s\n", $1, key }' "$dir/planted" |
    tripwire_cli | tr -d '\r' | awk 'NR % 2 == 0' >"$dir/got"
  while read -r n value; do
    got="$(sed -n "$((n + 1))p" "$dir/got")"
    [[ "$got" == "$value" ]] || problems+=("the key planted in db $n is ${got:+changed}${got:-gone}")
  done <"$dir/planted"
  if [[ -s "$dir/seen" ]]; then
    problems+=("connections to it from the suite: $(sort -u "$dir/seen" | head -5 | paste -sd ';' -)")
  fi
  tripwire_remove "$dir"
  # The tripwire's own: the connection that read the count after the suite.
  others=$((count_after - count_before - 1))
  if ((${#problems[@]})); then
    echo "the machine's Redis on 6379 WAS TOUCHED: $(printf '%s; ' "${problems[@]}")$others connection(s) to it meanwhile"
    return 1
  fi
  echo -n "the machine's Redis on 6379 untouched: $(wc -l <"$dir/planted.out" | awk '{ print $1 / 2 }') planted keys intact, "
  if ((others == 0)); then
    echo "no connection to it during the suite"
  else
    echo "$others connection(s) to it by other clients, none seen from the suite"
  fi
}
