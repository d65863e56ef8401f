#!/usr/bin/env bash
# pg-test-server.sh - a throwaway PostgreSQL server for the tests (never the system cluster).
#
#   scripts/pg-test-server.sh start DIR   init a cluster in DIR/data, start it listening on a
#                                         Unix socket in DIR only (no TCP), create database
#                                         "autodata", print its connection URL on stdout
#   scripts/pg-test-server.sh stop DIR    stop that server and remove DIR
#
# The server refuses to run as root, so as root the cluster belongs to the `postgres` system
# user (AUTODATA_PG_USER to pick another) and DIR is chowned to it; otherwise it runs as the
# calling user. Durability is off (fsync, synchronous_commit): it is a test instrument.
# Binaries: Debian's postgresql package (/usr/lib/postgresql/*/bin), or PG_BIN.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "usage: $0 start|stop DIR" >&2
  exit 2
fi

bin=${PG_BIN:-}
if [ -z "$bin" ]; then
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
fi
if [ -z "$bin" ] || [ ! -x "$bin/pg_ctl" ]; then
  echo "pg-test-server: no PostgreSQL server binaries (install Debian's postgresql package: make test does)" >&2
  exit 1
fi

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u "${AUTODATA_PG_USER:-postgres}" -- "$@"
  else
    "$@"
  fi
}

case "$cmd" in
start)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ "$(id -u)" -eq 0 ]; then chown "${AUTODATA_PG_USER:-postgres}" "$dir"; fi
  chmod 700 "$dir"
  as_owner "$bin/initdb" -D "$dir/data" -U autodata --auth=trust -E UTF8 --no-sync \
    >"$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2
    exit 1
  }
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses='' -c unix_socket_directories='$dir' -c fsync=off \
-c synchronous_commit=off -c full_page_writes=off -c max_connections=60" \
    start >/dev/null || {
    cat "$dir/server.log" >&2
    exit 1
  }
  as_owner "$bin/createdb" -h "$dir" -U autodata autodata
  echo "postgresql:///autodata?host=$dir&user=autodata"
  ;;
stop)
  [ -d "$dir" ] || exit 0
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
  ;;
*)
  echo "usage: $0 start|stop DIR" >&2
  exit 2
  ;;
esac
