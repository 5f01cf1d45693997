#!/usr/bin/env bash
# The README's test command: install what is needed, then run the whole test suite.
# Exits non-zero when a test fails, and also when no test ran (pytest's exit 5).
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
# The datastore tests also run against a local PostgreSQL when one can be started here.
# A cluster this script started is stopped again at the end (one already running is not).
started=$(mktemp)
stop_postgres() {
  if [ -s "$started" ]; then
    read -r version cluster <"$started"
    echo "test: stopping the PostgreSQL $version/$cluster it started" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo pg_ctlcluster "$version" "$cluster" stop >&2 || true
  fi
  rm -f "$started"
}
trap stop_postgres EXIT
if [ -z "${ESC_ORCH_TEST_PG_URL:-}" ]; then
  if url=$(ESC_ORCH_PG_STARTED="$started" bash scripts/postgres.sh); then
    export ESC_ORCH_TEST_PG_URL="$url"
  else
    echo "test: PostgreSQL unavailable; its datastore tests will be skipped (fail in CI)" >&2
  fi
fi
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "test: no tests ran - treated as a failure" >&2
  exit 1
fi
exit "$rc"
