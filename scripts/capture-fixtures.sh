#!/usr/bin/env bash
# Regenerates the golden captures in test/fixtures/ from real kernel traffic.
#
# Three namespaces, a -- r -- b, where r routes; plus kernel VXLAN between a and r.
# Everything is named pw-fx-* and removed on exit, also on failure. Needs root,
# iproute2, ethtool, tcpdump, dig, dnsmasq, curl, ping and python3. Run by hand; the captures are
# committed so the test suite does not depend on this script.
set -euo pipefail
cd "$(dirname "$0")/.."
out=test/fixtures
mkdir -p "$out"

A=pw-fx-a R=pw-fx-r B=pw-fx-b
pids=()
cleanup() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  for ns in $A $R $B; do ip netns del "$ns" 2>/dev/null || true; done
}
trap cleanup EXIT
cleanup

for ns in $A $R $B; do
  ip netns add "$ns"; ip -n "$ns" link set lo up
  # Quiet links: no router solicitations or MLD reports in the captures, except where wanted.
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1 net.ipv6.conf.all.disable_ipv6=1
done
ip link add pwfxa0 netns $A address 02:00:00:00:0a:01 type veth peer name pwfxra netns $R address 02:00:00:00:0a:02
ip link add pwfxb0 netns $B address 02:00:00:00:0b:01 type veth peer name pwfxrb netns $R address 02:00:00:00:0b:02
ip -n $A addr add 10.244.1.2/24 dev pwfxa0
ip netns exec $A sysctl -qw net.ipv6.conf.pwfxa0.disable_ipv6=0 net.ipv6.conf.pwfxa0.accept_ra=0 net.ipv6.conf.pwfxa0.router_solicitations=0
ip netns exec $R sysctl -qw net.ipv6.conf.pwfxra.disable_ipv6=0 net.ipv6.conf.pwfxra.router_solicitations=0
ip -n $A addr add fd00:a::2/64 dev pwfxa0 nodad
ip -n $R addr add 10.244.1.1/24 dev pwfxra
ip -n $R addr add fd00:a::1/64 dev pwfxra nodad
ip -n $R addr add 10.244.2.1/24 dev pwfxrb
ip -n $B addr add 10.244.2.2/24 dev pwfxb0
for ns in $A $R $B; do for l in $(ip -n "$ns" -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep pwfx); do ip -n "$ns" link set "$l" up; done; done
# veth offloads checksums to "hardware" that does not exist: the captured bytes would carry
# partial checksums. Golden bytes must be what a real NIC puts on the wire.
for pair in "$A pwfxa0" "$R pwfxra" "$R pwfxrb" "$B pwfxb0"; do
  set -- $pair; ip netns exec "$1" ethtool -K "$2" tx off rx off tso off gso off gro off >/dev/null
done
ip -n $A route add default via 10.244.1.1
ip -n $B route add default via 10.244.2.1
ip netns exec $R sysctl -qw net.ipv4.ip_forward=1
# A narrow link to b so that a DF packet of 1400 bytes needs fragmenting.
ip -n $R link set pwfxrb mtu 1280
ip -n $B link set pwfxb0 mtu 1280
# Kernel VXLAN a <-> r, VNI 42, on the IANA port, inner subnet 10.250.0.0/24.
ip -n $A link add pwfxvx type vxlan id 42 local 10.244.1.2 remote 10.244.1.1 dstport 4789 dev pwfxa0
ip -n $R link add pwfxvx type vxlan id 42 local 10.244.1.1 remote 10.244.1.2 dstport 4789 dev pwfxra
ip -n $A link set pwfxvx address 02:00:00:00:aa:01 up
ip -n $R link set pwfxvx address 02:00:00:00:aa:02 up
ip -n $A addr add 10.250.0.1/24 dev pwfxvx
ip -n $R addr add 10.250.0.2/24 dev pwfxvx

# Services in b (HTTP, DNS) and in r (HTTP over the VXLAN address).
ip netns exec $B python3 -m http.server 80 --bind 10.244.2.2 >/dev/null 2>&1 & pids+=($!)
ip netns exec $R python3 -m http.server 8080 --bind 10.250.0.2 >/dev/null 2>&1 & pids+=($!)
ip netns exec $B dnsmasq --no-daemon --no-resolv --no-hosts --port 53 --listen-address 10.244.2.2 --bind-interfaces \
  --address=/example.com/192.0.2.10 --txt-record=big.example.com,"$(printf 'x%.0s' $(seq 1 200))" >/dev/null 2>&1 & pids+=($!)
sleep 2

capture() { # name, command...
  local name=$1; shift
  ip netns exec $A tcpdump -q -i pwfxa0 -U -w "$out/$name.pcap" -s 2048 >/dev/null 2>&1 & local tp=$!
  sleep 0.5
  "$@" >/dev/null 2>&1 || true
  sleep 0.5
  kill -INT $tp; wait $tp 2>/dev/null || true
  echo "$name: $(tcpdump -r "$out/$name.pcap" -nn 2>/dev/null | wc -l) frames"
}

ip -n $A neigh flush dev pwfxa0
capture arp-ping ip netns exec $A ping -c 1 -W 1 -M do -s 56 10.244.2.2
capture http ip netns exec $A curl -s -m 3 http://10.244.2.2/
capture dns ip netns exec $A dig +tries=1 +time=2 @10.244.2.2 example.com A
capture udp-unreachable ip netns exec $A dig +tries=1 +time=1 @10.244.2.2 -p 5353 example.com A
capture ttl-exceeded ip netns exec $A ping -c 1 -W 1 -t 1 10.244.2.2
capture frag-needed ip netns exec $A ping -c 1 -W 1 -M do -s 1400 10.244.2.2
capture ipv6-ping ip netns exec $A ping -6 -c 1 -W 1 fd00:a::1
capture vxlan-http ip netns exec $A curl -s -m 3 http://10.250.0.2:8080/
