#!/bin/sh
# SPDX-License-Identifier: MIT
# A throwaway PostgreSQL server for the tests and the benchmarks.
#
#   sh tests/services/postgresql.sh start DIR   make a cluster in DIR (which
#                                               must not exist, in a folder
#                                               the postgres user may enter,
#                                               such as /tmp), start it, print
#                                               its connection string
#                                               (database "lupine", user
#                                               "lupine")
#   sh tests/services/postgresql.sh stop DIR    stop it and remove DIR
#
# It listens on a Unix socket in DIR only (no TCP), on the first port of
# 55432-55531 that no other server on this machine uses, trusts every local
# connection, and syncs nothing: it holds test data only. As root, initdb
# and the server run as the postgres user (PostgreSQL refuses to run as
# root), which the postgresql-15 package creates.
set -eu
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$bin" ] || { echo "postgresql.sh: no PostgreSQL server found (install postgresql-15)" >&2; exit 1; }
cmd=${1:-}
dir=${2:-}
[ -n "$dir" ] || { echo "usage: postgresql.sh start|stop DIR" >&2; exit 2; }

# run as the server's user: postgres when we are root
as_server() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# 1 if something listens on TCP port $1 here, or has its socket in the usual folders
port_taken() {
  hex=$(printf '%04X' "$1")
  for f in /proc/net/tcp /proc/net/tcp6; do
    [ -r "$f" ] && awk -v p=":$hex" '$2 ~ p"$" && $4 == "0A" { found = 1 } END { exit !found }' "$f" &&
      return 0
  done
  [ -e "/tmp/.s.PGSQL.$1" ] || [ -e "/var/run/postgresql/.s.PGSQL.$1" ]
}

case "$cmd" in
start)
  mkdir "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  port=55432
  while port_taken "$port"; do
    port=$((port + 1))
    [ "$port" -le 55531 ] || { echo "postgresql.sh: no free port in 55432-55531" >&2; exit 1; }
  done
  as_server "$bin/initdb" -D "$dir/data" -U lupine --auth=trust --no-sync --locale=C.UTF-8 \
    -E UTF8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
  as_server "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -o "-p $port -k $dir \
    -c listen_addresses= -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
    -c max_connections=200" start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
  "$bin/psql" -X -q -h "$dir" -p "$port" -U lupine -d postgres -c "CREATE DATABASE lupine" >/dev/null
  echo "host=$dir port=$port user=lupine dbname=lupine"
  ;;
stop)
  [ -d "$dir/data" ] && as_server "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
  ;;
*)
  echo "usage: postgresql.sh start|stop DIR" >&2
  exit 2
  ;;
esac
