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
