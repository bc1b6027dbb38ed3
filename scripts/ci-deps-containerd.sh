#!/usr/bin/env bash
# containerd + runc + crun + CNI plugins + iptables + busybox-static (+ docker-registry and skopeo for
# the local-registry test) for the containerd runtime and
# tests/node_containerd (Debian packages); idempotent. ketch starts its own containerd with its
# own config, socket and data dir, so a system containerd the package may start does not matter.
set -euo pipefail
PKGS=(containerd runc crun containernetworking-plugins iptables busybox-static docker-registry skopeo)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" = 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "ci-deps-containerd: missing ${missing[*]}; install them as root (apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "ci-deps-containerd: installing ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
command -v containerd >/dev/null && command -v runc >/dev/null && command -v crun >/dev/null && command -v ctr >/dev/null
test -x /usr/lib/cni/bridge && test -x /bin/busybox
