#!/bin/sh
# What tests/services needs on a Debian CI machine: nft (the proxy's rules), ip (network
# namespaces), iptables for CNI portmap. Idempotent: installs only what is missing.
set -eu
missing=""
command -v nft >/dev/null 2>&1 || missing="$missing nftables"
command -v ip >/dev/null 2>&1 || missing="$missing iproute2"
command -v iptables >/dev/null 2>&1 || missing="$missing iptables"
if [ -n "$missing" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing
fi
nft --version
ip -V
