/**
 * Hubble's metric vocabulary for what podwire's dataplane counts: the drop reasons of
 * Cilium's flow API (`flow.DropReason` names, as hubble_drop_total's `reason` label
 * carries them), the protocol names Hubble's `FlowProtocol` gives, and the counter the
 * flow ring feeds for hubble_flows_processed_total.
 */
import { Drop, DROP_REASONS } from '../datapath/drops.js';

/**
 * Cilium's name for each podwire drop reason where Cilium has the same reason; the rest
 * keep podwire's name in Cilium's style (upper case, underscores), so a dashboard that
 * lists Cilium's reasons sees podwire's where they mean the same, and every drop somewhere.
 */
const CILIUM_REASONS: Partial<Record<Drop, string>> = {
  [Drop.Malformed]: 'INVALID_PACKET_DROPPED',
  [Drop.Spoofed]: 'INVALID_SOURCE_IP',
  [Drop.ArpSpoofed]: 'INVALID_SOURCE_IP',
  [Drop.Ipv6]: 'UNSUPPORTED_L3_PROTOCOL',
  [Drop.UnknownEthertype]: 'UNSUPPORTED_L3_PROTOCOL',
  [Drop.TtlExceeded]: 'TTL_EXCEEDED',
  [Drop.NoRoute]: 'FIB_LOOKUP_FAILED',
  [Drop.NoNeighbour]: 'NO_MATCHING_LOCAL_CONTAINER_FOUND',
  [Drop.WrongVni]: 'INVALID_VNI',
  [Drop.UnknownPeer]: 'UNKNOWN_SENDER',
  [Drop.NotForThisNode]: 'UNKNOWN_L3_TARGET_ADDRESS',
  [Drop.LocalUnhandled]: 'LOCAL_HOST_IS_UNREACHABLE',
  [Drop.CtFull]: 'CT_MAP_INSERTION_FAILED',
  [Drop.CtInvalid]: 'UNKNOWN_CONNECTION_TRACKING_STATE',
  [Drop.CtClash]: 'CT_CANNOT_CREATE_ENTRY_FROM_PACKET',
  [Drop.NatExhausted]: 'NO_MAPPING_FOR_NAT_MASQUERADE',
  [Drop.PolicyDenied]: 'POLICY_DENIED',
  [Drop.NoEndpoints]: 'SERVICE_BACKEND_NOT_FOUND',
  [Drop.NoLocalEndpoints]: 'SERVICE_BACKEND_NOT_FOUND',
  [Drop.SourceRangeDenied]: 'DENIED_BY_LB_SRC_RANGE_CHECK',
  [Drop.FloodLimited]: 'DROP_RATE_LIMITED',
  [Drop.FragmentTimeout]: 'FIRST_LOGICAL_DATAGRAM_FRAGMENT_NOT_FOUND',
};

/** hubble_drop_total's `reason` for a podwire drop reason (Drop value). */
export function hubbleDropReason(reason: number): string {
  return CILIUM_REASONS[reason as Drop] ?? (DROP_REASONS[reason]?.name ?? `unknown-${reason}`).toUpperCase().replace(/-/g, '_');
}

/** Hubble's `protocol` label for DropTransport slots 0..2; a drop whose transport was not read is "Unknown L4". */
export const HUBBLE_PROTOCOLS: readonly string[] = ['TCP', 'UDP', 'ICMPv4'];
export const HUBBLE_UNKNOWN_PROTOCOL = 'Unknown L4';

/** One kind of flow the ring processed, as hubble_flows_processed_total labels it. */
export interface FlowKind {
  /** Hubble's flow type: `Trace`, `Drop`, `PolicyVerdict`, `L7`. */
  readonly type: string;
  /** `to-endpoint`, `to-overlay`, `to-stack`, ... for Trace; the L7 protocol (`dns`) for L7; '' otherwise. */
  readonly subtype: string;
  /** `FORWARDED`, `DROPPED`, `TRANSLATED`, ... */
  readonly verdict: string;
}

/** What /metrics reads from the flow ring: every kind it has processed, with how many. */
export interface FlowsProcessedSource {
  flowsProcessed(): Iterable<FlowKind & { readonly count: number }>;
}

/**
 * The counter a flow ring can keep for hubble_flows_processed_total: one call per flow
 * event (per connection and per drop, never per forwarded packet), read at scrape time.
 * Kinds are few (types x subtypes x verdicts), so a map from a joined key is small and the
 * key's string is built once per event.
 */
export class FlowsProcessed implements FlowsProcessedSource {
  private readonly kinds = new Map<string, FlowKind & { count: number }>();

  count(type: string, subtype: string, verdict: string, n = 1): void {
    const key = `${type}\u0000${subtype}\u0000${verdict}`;
    const kind = this.kinds.get(key);
    if (kind !== undefined) kind.count += n;
    else this.kinds.set(key, { type, subtype, verdict, count: n });
  }

  flowsProcessed(): Iterable<FlowKind & { readonly count: number }> {
    return this.kinds.values();
  }
}

/** What a flow ring counts, as hubble_flows_processed_total reads it (src/datapath/flow-ring.ts). */
export interface RecordedFlows {
  /** By FlowKind: 1 connection, 2 translation, 3 drop, 4 policy verdict, 5 connection end, 6 DNS request, 7 DNS response. */
  readonly recordedByKind: Float64Array;
  readonly allowedVerdicts: number;
}

/**
 * hubble_flows_processed_total from a ring's counters, in Hubble's types and verdicts: a
 * connection, its NAT and its end are traces (FORWARDED, TRANSLATED), drops DROPPED, policy
 * verdicts FORWARDED or DROPPED, DNS L7 with subtype dns. Read at scrape time only.
 */
export function ringFlowsProcessed(ring: RecordedFlows): FlowsProcessedSource {
  return {
    *flowsProcessed() {
      const k = ring.recordedByKind;
      const kinds: [string, string, string, number][] = [
        ['Trace', '', 'FORWARDED', k[1] + k[5]],
        ['Trace', '', 'TRANSLATED', k[2]],
        ['Drop', '', 'DROPPED', k[3]],
        ['PolicyVerdict', '', 'FORWARDED', ring.allowedVerdicts],
        ['PolicyVerdict', '', 'DROPPED', k[4] - ring.allowedVerdicts],
        ['L7', 'dns', 'FORWARDED', k[6] + k[7]],
      ];
      for (const [type, subtype, verdict, count] of kinds) if (count > 0) yield { type, subtype, verdict, count };
    },
  };
}
