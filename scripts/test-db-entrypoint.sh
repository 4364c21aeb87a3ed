#!/bin/sh
# Entrypoint of the marina-test/db image: starts ONE database server in the foreground,
# configured from the environment the way the official images are, so tests exercise the
# same credential handling Marina meets in production:
#   postgres: POSTGRES_USER (default postgres), POSTGRES_PASSWORD
#   mariadb:  MARIADB_ROOT_PASSWORD, else MYSQL_ROOT_PASSWORD
#   redis:    no settings
set -eu

case "${1:-}" in
postgres)
  export PGDATA=/var/lib/postgresql/data
  user="${POSTGRES_USER:-postgres}"
  mkdir -p "$PGDATA" /run/postgresql
  chown -R postgres:postgres /var/lib/postgresql /run/postgresql
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    su postgres -c "initdb -D '$PGDATA' -U '$user' --auth-local=trust --auth-host=scram-sha-256" >/dev/null
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    if [ -n "${POSTGRES_PASSWORD:-}" ]; then
      su postgres -c "postgres --single -D '$PGDATA' postgres" >/dev/null <<SQL
ALTER USER "$user" WITH PASSWORD '$POSTGRES_PASSWORD';
SQL
    fi
  fi
  exec su postgres -c "exec postgres -D '$PGDATA' -c listen_addresses='*'"
  ;;
mariadb)
  password="${MARIADB_ROOT_PASSWORD:-${MYSQL_ROOT_PASSWORD:-}}"
  mkdir -p /run/mysqld
  chown mysql:mysql /run/mysqld
  if [ ! -d /var/lib/mysql/mysql ]; then
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
  fi
  init=/run/mysqld/init.sql
  : >"$init"
  if [ -n "$password" ]; then
    echo "ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('$password');" >>"$init"
  fi
  chown mysql:mysql "$init"
  exec mariadbd --user=mysql --bind-address=0.0.0.0 --init-file="$init"
  ;;
redis)
  mkdir -p /data
  cd /data
  exec redis-server --bind 0.0.0.0 --protected-mode no --dir /data
  ;;
*)
  echo "usage: $0 postgres|mariadb|redis" >&2
  exit 2
  ;;
esac
