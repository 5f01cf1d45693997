#!/usr/bin/env bash
# Static checks: ruff (lint and format), mypy --strict, the import-layer contracts, pyang --strict.
set -uo pipefail
cd "$(dirname "$0")/.."
rc=0
.venv/bin/ruff check src tests bench || rc=1
.venv/bin/ruff format --check src tests bench || rc=1
.venv/bin/mypy || rc=1
.venv/bin/lint-imports || rc=1
.venv/bin/pyang --strict -p yang -p .venv/share/yang/modules/ietf yang/esc.yang yang/esc-orch.yang || rc=1
exit $rc
