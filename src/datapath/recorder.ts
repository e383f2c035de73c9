/**
 * What a stage tells a recorder: the hook through which `podwire trace` sees the forwarding
 * path's own decisions (`podwire observe` has its own, numbers only: flow-recorder.ts).
 * The plain path has no recorder; every call site is behind `ctx.recorder !== undefined`,
 * so recording costs nothing when off and strings are only built when someone listens.
 */
import type { FlowVerdict } from '../kube/service-table.js';
import type { FrameContext, Verdict } from './context.js';

/** The stages by name, as src/datapath/stages/ names them. */
export type StageName =
  | 'pod-ingress'
  | 'uplink-ingress'
  | 'decap'
  | 'arp'
  | 'bridge'
  | 'reassemble'
  | 'local'
  | 'conntrack'
  | 'service-nat'
  | 'route'
  | 'policy'
  | 'source-nat'
  | 'deliver'
  | 'encap'
  | 'to-uplink';

/** Every stage, in a fixed order: a stage's index here is how a flow event names it. */
export const STAGE_NAMES: readonly StageName[] = [
  'pod-ingress',
  'uplink-ingress',
  'decap',
  'arp',
  'bridge',
  'reassemble',
  'local',
  'conntrack',
  'service-nat',
  'route',
  'policy',
  'source-nat',
  'deliver',
  'encap',
  'to-uplink',
];

/** The index of `name` in STAGE_NAMES (a scan of interned strings: no allocation). */
export function stageIndex(name: StageName): number {
  return STAGE_NAMES.indexOf(name);
}

export interface PathRecorder {
  /** A line about what `stage` saw or did, in words a person reads. */
  note(stage: StageName, line: string): void;
  /** The compiled service table's decision for a new flow (ctx.decision holds the rewrite). */
  service(ctx: FrameContext, verdict: FlowVerdict): void;
  /** NetworkPolicy's verdict on one direction of a new flow: `subject` is the pod whose policy applies. */
  policy(direction: 'egress' | 'ingress', subject: number, peer: number, protocol: number, port: number, allowed: boolean): void;
  /** The stage that ended the frame's walk, and how. */
  end(stage: StageName, verdict: Verdict, ctx: FrameContext): void;
}
