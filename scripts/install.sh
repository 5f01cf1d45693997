#!/usr/bin/env bash
# Install esc-orch as a service, the way examples/esc-orchd.service expects it:
#   /opt/esc-orch                  a venv holding the esc-orch wheel (python -m build)
#   /opt/esc-orch/share/doc/esc-orch  the docs (the unit's Documentation=)
#   /etc/esc-orch/esc-orchd.toml   the configuration (kept if it exists)
#   /etc/systemd/system/esc-orchd.service
#   user and group esc-orch (system, no login), data directory /var/lib/esc-orch (0700)
# Usage: sudo bash scripts/install.sh [WHEEL]   (builds the wheel from this tree without one)
# Run again with a newer wheel to upgrade (docs/operations.md: stop, back up, install,
# esc-orchd db upgrade, start). ESC_ORCH_ROOT=DIR stages everything under DIR instead of /
# (packaging, tests): then no user is created and systemd is not told.
set -euo pipefail
cd "$(dirname "$0")/.."
root="${ESC_ORCH_ROOT:-}"
prefix="$root/opt/esc-orch"
python="${PYTHON:-python3}"

wheel="${1:-}"
if [ -z "$wheel" ]; then
  builder=.venv/bin/python
  [ -x "$builder" ] || builder="$python"
  # setuptools reuses ./build/lib: a file renamed or removed since the last build would
  # otherwise ship in the wheel too (a migration revision present twice, say).
  rm -rf build
  "$builder" -m build --wheel --outdir dist . >/dev/null
  wheel=$(ls -t dist/esc_orch-*.whl | head -n 1)
fi
echo "install: $wheel into $prefix"
[ -x "$prefix/bin/python" ] || "$python" -m venv "$prefix"
quiet() { grep -v "^WARNING: Location" || true; }
"$prefix/bin/python" -m pip install -q --upgrade pip 2>&1 | quiet
"$prefix/bin/python" -m pip install -q --upgrade "$wheel" 2>&1 | quiet
# the same version number rebuilt (a fix before a release): replace esc-orch itself too
"$prefix/bin/python" -m pip install -q --force-reinstall --no-deps "$wheel" 2>&1 | quiet
"$prefix/bin/esc-orchd" --help >/dev/null

install -d -m 0755 "$prefix/share/doc/esc-orch" "$root/etc/esc-orch" "$root/etc/systemd/system"
install -m 0644 README.md docs/*.md "$prefix/share/doc/esc-orch/"
install -m 0644 examples/esc-orchd.toml "$prefix/share/doc/esc-orch/esc-orchd.toml.example"
if [ ! -e "$root/etc/esc-orch/esc-orchd.toml" ]; then
  install -m 0644 examples/esc-orchd.toml "$root/etc/esc-orch/esc-orchd.toml"
fi
install -m 0644 examples/esc-orchd.service "$root/etc/systemd/system/esc-orchd.service"

if [ -n "$root" ]; then
  install -d -m 0700 "$root/var/lib/esc-orch"
  echo "install: staged under $root"
  exit 0
fi
if ! id -u esc-orch >/dev/null 2>&1; then
  useradd --system --user-group --home-dir /var/lib/esc-orch --no-create-home \
    --shell /usr/sbin/nologin esc-orch
fi
install -d -o esc-orch -g esc-orch -m 0700 /var/lib/esc-orch
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
fi
cat <<'NEXT'
install: done. Next:
  printf '%s\n' 'a-good-password' | sudo -u esc-orch /opt/esc-orch/bin/esc-orchd useradd \
      --data-dir /var/lib/esc-orch admin --password-stdin
  sudo -u esc-orch /opt/esc-orch/bin/esc-orchd db upgrade --config /etc/esc-orch/esc-orchd.toml
  systemctl enable --now esc-orchd
NEXT
