/**
 * Why the forwarding path dropped a frame: a fixed, documented list. Each reason is a small
 * integer so counters are one typed array indexed by reason; `podwire status --json`
 * prints them by name, and pcapng captures put the name in the packet comment.
 */
export const Drop = {
  /** The Ethernet, ARP or IPv4 header failed its checked constructor (truncated, bad lengths). */
  Malformed: 0,
  /** The IPv4 header checksum did not verify. */
  BadChecksum: 1,
  /** A pod sent a frame whose source MAC or IPv4 address is not its own. */
  Spoofed: 2,
  /** IPv6: recognised and counted; podwire forwards IPv4 only for now. */
  Ipv6: 3,
  /** An EtherType the pipeline does not handle (not IPv4, ARP or IPv6). */
  UnknownEthertype: 4,
  /** The TTL ran out; ICMP time exceeded was sent back. */
  TtlExceeded: 5,
  /** No route to the destination (outside every pod CIDR podwire knows); ICMP net unreachable sent. */
  NoRoute: 6,
  /** The destination is in this node's pod CIDR but no pod holds the address; ICMP host unreachable sent. */
  NoNeighbour: 7,
  /** Larger than the overlay path with DF set; ICMP fragmentation needed sent. */
  TooBig: 8,
  /** Larger than the overlay path without DF: podwire does not fragment. */
  NeedsFragmentation: 9,
  /** A VXLAN datagram without the I flag, or a VNI other than the cluster's. */
  WrongVni: 10,
  /** A VXLAN datagram from an address that holds no lease. */
  UnknownPeer: 11,
  /** A decapsulated frame not addressed to this node's VTEP, or not for this node's pod CIDR. */
  NotForThisNode: 12,
  /** The bridge would send the frame back out of the port it came in on. */
  SamePort: 13,
  /** A port's transmit queue was full. */
  TxQueueFull: 14,
  /** Addressed to the gateway itself but not something the gateway answers. */
  LocalUnhandled: 15,
  /** The connection table is full and nothing could be evicted: a new flow was refused. */
  CtFull: 16,
  /** Out of state for its connection (conntrack INVALID), as kube-proxy drops it. */
  CtInvalid: 17,
  /** Its tuple clashed with another connection's. */
  CtClash: 18,
  /** No free source port for masquerade. */
  NatExhausted: 19,
  /** A new connection NetworkPolicy does not allow (egress of its source or ingress of its destination). */
  PolicyDenied: 20,
  /** A service with no ready endpoint: rejected with ICMP port unreachable, as kube-proxy does. */
  NoEndpoints: 21,
  /** External traffic to an externalTrafficPolicy: Local service with no endpoint on this node. */
  NoLocalEndpoints: 22,
  /** A bug: the pipeline threw on this frame (logged once, counted always). */
  InternalError: 23,
  /** A pod's ARP claimed an IP address that is not its own (ARP spoofing). */
  ArpSpoofed: 24,
  /** A VXLAN datagram from a peer whose inner source is outside that peer's pod CIDR and answers no connection tracked here. */
  OverlaySpoofed: 25,
  /** Broadcast, multicast or unknown-unicast frames from one port over its flood budget. */
  FloodLimited: 26,
  /** A fragment overlapping another of its datagram: the whole datagram is dropped (RFC 5722). */
  FragmentOverlap: 27,
  /** A datagram in more fragments than the reassembly allows, or longer than 65,535 bytes. */
  FragmentTooMany: 28,
  /** No room in the reassembly table (its memory bound) for another datagram. */
  FragmentTableFull: 29,
  /** A datagram whose fragments did not all arrive within the reassembly timeout. */
  FragmentTimeout: 30,
  /** A fragment with bad lengths: a first fragment too short for its transport header, a non-final one not a multiple of 8. */
  FragmentInvalid: 31,
  /** A new connection to a load-balancer IP from outside its loadBalancerSourceRanges (KUBE-PROXY-FIREWALL). */
  SourceRangeDenied: 32,
} as const;

export type Drop = (typeof Drop)[keyof typeof Drop];

export const DROP_REASONS: readonly { name: string; description: string }[] = [
  { name: 'malformed', description: 'a header failed its length checks' },
  { name: 'bad-checksum', description: 'the IPv4 header checksum did not verify' },
  { name: 'spoofed', description: 'a pod sent with a source MAC or IP that is not its own' },
  { name: 'ipv6', description: 'IPv6 is recognised and counted, not forwarded' },
  { name: 'unknown-ethertype', description: 'an EtherType other than IPv4, ARP or IPv6' },
  { name: 'ttl-exceeded', description: 'the TTL ran out (ICMP time exceeded sent)' },
  { name: 'no-route', description: 'no route to the destination (ICMP net unreachable sent)' },
  { name: 'no-neighbour', description: 'no pod holds the address (ICMP host unreachable sent)' },
  { name: 'too-big', description: 'larger than the overlay path with DF (ICMP fragmentation needed sent)' },
  { name: 'needs-fragmentation', description: 'larger than the overlay path without DF' },
  { name: 'wrong-vni', description: 'VXLAN without the I flag or with a foreign VNI' },
  { name: 'unknown-peer', description: 'VXLAN from an address that holds no lease' },
  { name: 'not-for-this-node', description: 'a decapsulated frame not for this node' },
  { name: 'same-port', description: 'the bridge would send the frame back where it came from' },
  { name: 'tx-queue-full', description: "a port's transmit queue was full" },
  { name: 'local-unhandled', description: 'addressed to the gateway but nothing there answers it' },
  { name: 'conntrack-full', description: 'the connection table is full: a new flow was refused' },
  { name: 'conntrack-invalid', description: 'out of state for its connection (ctstate INVALID)' },
  { name: 'conntrack-clash', description: "its tuple clashed with another connection's" },
  { name: 'nat-exhausted', description: 'no free source port for masquerade' },
  { name: 'policy-denied', description: 'NetworkPolicy does not allow this new connection' },
  { name: 'no-endpoints', description: 'a service with no ready endpoint (ICMP port unreachable sent)' },
  { name: 'no-local-endpoints', description: 'external traffic to a Local-policy service with no endpoint on this node' },
  { name: 'internal-error', description: 'the pipeline threw on this frame: a bug, logged once' },
  { name: 'arp-spoofed', description: "a pod's ARP claimed an address that is not its own" },
  { name: 'overlay-spoofed', description: "VXLAN whose inner source is not the sending peer's and answers no tracked connection" },
  { name: 'flood-limited', description: "a port's broadcast/unknown-unicast frames over its flood budget" },
  { name: 'fragment-overlap', description: 'fragments of one datagram overlapped: the datagram was dropped' },
  { name: 'fragment-too-many', description: 'a datagram in too many fragments or longer than 65,535 bytes' },
  { name: 'fragment-table-full', description: 'no room in the reassembly table for another datagram' },
  { name: 'fragment-timeout', description: 'fragments of a datagram that never completed in time' },
  { name: 'fragment-invalid', description: 'a fragment with impossible lengths (tiny first fragment, unaligned offset)' },
  { name: 'source-range-denied', description: "a load-balancer IP reached from outside the service's loadBalancerSourceRanges" },
];

export function dropName(reason: number): string {
  return DROP_REASONS[reason]?.name ?? `unknown-${reason}`;
}

/**
 * The transport of a dropped packet, where the path had read it: drops counted in the
 * walk's verdict are also counted by reason and transport (`PathTables.dropTransports`),
 * which costs an increment per drop and nothing per forwarded packet. Drops counted
 * elsewhere (the egress queues, the reassembly table's timeouts) and packets dropped
 * before their transport header was read have none.
 */
export const DropTransport = { Tcp: 0, Udp: 1, Icmp: 2 } as const;
export type DropTransport = (typeof DropTransport)[keyof typeof DropTransport];
export const DROP_TRANSPORTS = 3;
