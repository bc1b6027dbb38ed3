#!/usr/bin/env bash
# The real etcd (Debian etcd-server) for the etcd store and HA tests; idempotent.
set -euo pipefail
if [ -x /usr/bin/etcd ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "ci-deps-etcd: /usr/bin/etcd missing; install the etcd-server package as root" >&2
  exit 1
fi
echo "ci-deps-etcd: installing etcd-server"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends etcd-server >/dev/null
# The package starts a system etcd on 2379; ketch's tests start their own on free ports.
if command -v systemctl >/dev/null && systemctl is-active --quiet etcd 2>/dev/null; then
  systemctl stop etcd || true
  systemctl disable etcd >/dev/null 2>&1 || true
fi
test -x /usr/bin/etcd
