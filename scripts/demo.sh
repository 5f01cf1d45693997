#!/usr/bin/env bash
# The README's demo command: install what is needed, then run the demo (what it shows: README.md; the scenarios: docs/scenarios.md).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m esc_orch.demo "$@"
