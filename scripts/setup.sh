#!/usr/bin/env bash
# Prepares a fresh Debian/Ubuntu machine for podwire: the Debian packages the dataplane and
# its tests use, then the npm packages from the lockfile (which also builds the TAP addon).
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Command -> Debian package. iproute2 and iputils-ping are what podwire itself needs; the
# rest are the real clients and readers the tests and benchmarks drive (gcc builds their
# C load generator).
declare -A wanted=(
  [ip]=iproute2 [ping]=iputils-ping [tcpdump]=tcpdump [tshark]=tshark [dig]=bind9-dnsutils
  [curl]=curl [iperf3]=iperf3 [dnsmasq]=dnsmasq-base [ethtool]=ethtool [python3]=python3
  [g++]=g++ [gcc]=gcc [make]=make [iptables]=iptables
  [nft]=nftables
  [dnsperf]=dnsperf
  # The metrics tests check every node's /metrics with promtool and scrape it with a real server.
  [promtool]=prometheus [prometheus]=prometheus
  # The hardening tests run attacks as a user they create, and drop to it with runuser.
  [useradd]=passwd [userdel]=passwd [runuser]=util-linux
  # Several machines: the cluster store, and nsenter to run an agent in a machine namespace.
  [etcd]=etcd-server [etcdctl]=etcd-client [nsenter]=util-linux
  # The ingress tests load the controller with wrk; its benchmark runs nginx beside it as a reverse proxy.
  [wrk]=wrk [nginx]=nginx
  # The web view's end-to-end tests drive a real headless browser (playwright-core launches it).
  [chromium]=chromium
)
missing=()
for cmd in "${!wanted[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${wanted[$cmd]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "podwire setup: missing ${missing[*]}; run this script as root to install them" >&2
    exit 1
  fi
  echo "podwire setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # tshark asks whether non-root users may capture; the answer does not matter to podwire.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm ci when node_modules is missing or older than the lockfile.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "podwire setup: installing npm packages"
  npm ci --no-audit --no-fund 2>&1 | grep -v 'Unknown user config' || true
  [ -d node_modules ] || { echo "podwire setup: npm ci failed" >&2; exit 1; }
fi
