#!/usr/bin/env bash
# kubectl 1.20 (Debian kubernetes-client) for tests/e2e/test_kubectl120.py; idempotent.
# /usr/bin/kubectl may belong to another package, so the binary is extracted from the .deb
# into $KUBECTL120_DIR (default /opt/kubectl120) instead of installing the package.
set -euo pipefail
DIR="${KUBECTL120_DIR:-/opt/kubectl120}"
BIN="$DIR/kubectl"
if [ -x "$BIN" ] && "$BIN" version --client --short 2>/dev/null | grep -q 'v1\.20\.'; then
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "ci-deps-kubectl120: $BIN missing and no apt-get to fetch kubernetes-client" >&2
  exit 1
fi
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
if ! apt-get download kubernetes-client >/dev/null 2>&1; then
  apt-get update -qq
  apt-get download kubernetes-client >/dev/null
fi
dpkg-deb -x kubernetes-client_*.deb root
mkdir -p "$DIR"
install -m 0755 root/usr/bin/kubectl "$BIN"
"$BIN" version --client --short
