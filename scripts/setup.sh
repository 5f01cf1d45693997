#!/usr/bin/env bash
# Install what esc-orch needs on a fresh Debian/Ubuntu machine, idempotently:
# system packages with apt (only those missing), Python packages in ./.venv.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(libyang2-dev libyang-tools pkg-config gcc python3-venv python3-dev iproute2 openssl yangcli netconfd openssh-server systemd)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing system packages: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

python="${PYTHON:-python3}"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "setup: esc-orch needs Python 3.11 or newer (found $("$python" --version))" >&2
  exit 1
}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
echo "setup: installing esc-orch and its test tools into .venv"
.venv/bin/python -m pip install -q -e '.[test]' 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c 'import esc_orch.model.schema as s; s.data_roots()' \
  || { echo "setup: the esc YANG module does not load" >&2; exit 1; }
echo "setup: ready"
