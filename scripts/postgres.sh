#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests and benchmarks of compresslab's shared studies.
#   scripts/postgres.sh install          install Debian's postgresql when its binaries are missing (root)
#   scripts/postgres.sh start DIR PORT   initdb in DIR and start on 127.0.0.1:PORT (as root, DIR is given to the
#                                        postgres user, so its parent folders must be open to that user)
#   scripts/postgres.sh stop DIR         stop the server started in DIR
# The server trusts local connections, listens on loopback only, and lives in DIR: delete DIR to forget it.
set -euo pipefail

bin_dir() {
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$found" ] && echo "$found"
}

as_postgres() {
  if [ "$(id -u)" = "0" ]; then su postgres -s /bin/bash -c "$1"; else bash -c "$1"; fi
}

case "${1:-}" in
  install)
    if [ -z "$(bin_dir)" ]; then
      if [ "$(id -u)" != "0" ]; then
        echo "postgres.sh: PostgreSQL is not installed and installing it needs root (apt-get install postgresql)" >&2
        exit 3
      fi
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq >/dev/null
      apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    fi
    echo "$(bin_dir)"
    ;;
  start)
    dir=${2:?usage: postgres.sh start DIR PORT}; port=${3:?usage: postgres.sh start DIR PORT}
    bin=$(bin_dir) || { echo "postgres.sh: PostgreSQL is not installed: run 'postgres.sh install'" >&2; exit 3; }
    mkdir -p "$dir"
    [ "$(id -u)" = "0" ] && chown postgres "$dir"
    as_postgres "'$bin/initdb' -D '$dir/data' -A trust -U postgres >'$dir/initdb.log' 2>&1"
    as_postgres "'$bin/pg_ctl' -D '$dir/data' -o '-p $port -k $dir -c listen_addresses=127.0.0.1' -l '$dir/log' start -w >/dev/null"
    echo "postgresql+psycopg2://postgres@127.0.0.1:$port/postgres"
    ;;
  stop)
    dir=${2:?usage: postgres.sh stop DIR}
    bin=$(bin_dir)
    as_postgres "'$bin/pg_ctl' -D '$dir/data' stop -m fast -w >/dev/null" || true
    ;;
  *)
    echo "usage: postgres.sh install | start DIR PORT | stop DIR" >&2
    exit 2
    ;;
esac
