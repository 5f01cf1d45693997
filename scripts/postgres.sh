#!/usr/bin/env bash
# Make a local PostgreSQL available for the datastore tests and print its SQLAlchemy URL.
# Installs Debian's postgresql if missing, starts the first cluster (listening on localhost
# only), and creates the role and database esc_orch_test. Needs root (or sudo).
# With ESC_ORCH_PG_STARTED=FILE it writes "VERSION CLUSTER" to FILE when it started the
# cluster itself (scripts/test.sh then stops it; a cluster already running is left alone).
set -euo pipefail
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi
}
if ! command -v pg_lsclusters >/dev/null 2>&1; then
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
fi
read -r version cluster port _ < <(pg_lsclusters --no-header | head -n 1)
if ! pg_lsclusters --no-header | head -n 1 | grep -q online; then
  $sudo pg_ctlcluster "$version" "$cluster" start -- -o "-c listen_addresses=localhost" >&2 \
    || $sudo pg_ctlcluster "$version" "$cluster" start >&2
  if [ -n "${ESC_ORCH_PG_STARTED:-}" ]; then
    echo "$version $cluster" >"$ESC_ORCH_PG_STARTED"
  fi
fi
for _ in $(seq 1 30); do
  as_postgres pg_isready -q -p "$port" && break
  sleep 0.5
done
as_postgres psql -q -p "$port" -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'esc_orch_test') THEN
    CREATE ROLE esc_orch_test LOGIN PASSWORD 'esc_orch_test';
  END IF;
END $$;
SQL
if ! as_postgres psql -p "$port" -tAc "SELECT 1 FROM pg_database WHERE datname='esc_orch_test'" | grep -q 1; then
  as_postgres createdb -p "$port" -O esc_orch_test esc_orch_test
fi
echo "postgresql+psycopg://esc_orch_test:esc_orch_test@127.0.0.1:${port}/esc_orch_test"
