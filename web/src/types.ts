/**
 * The JSON the page reads from the server's API (src/ui: map.ts, flow-hub.ts,
 * trace-path.ts; README.md documents it). Only the fields the page uses.
 */
export interface MapPod {
  id: string;
  namespace: string;
  name: string;
  ip: string;
  ready: boolean;
  restarts: number;
  reason?: string;
}

export interface MapNode {
  id: string;
  name: string;
  up: boolean;
  ready: boolean;
  machine: string;
  podCIDR: string;
  bridge: { name: string; address: string };
  vtep: { name: string; address: string; port: number };
  externalIP: string;
  pods: MapPod[];
}

export interface MapEndpoint {
  ip: string;
  port: number;
  ready: boolean;
  pod?: string;
}

export interface MapService {
  id: string;
  namespace: string;
  name: string;
  type: string;
  clusterIP?: string;
  headless: boolean;
  loadBalancerIP?: string;
  builtin?: true;
  ports: { name?: string; protocol: string; port: number; nodePort?: number; endpoints: MapEndpoint[] }[];
}

export interface ClusterMap {
  name: string;
  nodes: MapNode[];
  services: MapService[];
  policies: { id: string; namespace: string; name: string }[];
  links: { from: string; to: string }[];
  outside: { cidr: string; loadBalancerCIDR: string };
  dns: { ip: string; domain: string };
}

export interface FlowEdge {
  key: string;
  from: string;
  to: string;
}

export interface HubFlow {
  at: number;
  node: string;
  verdict: string;
  edges: FlowEdge[];
  line: string;
  dropReason?: string;
  deniedBy?: string[];
}

export interface TraceStage {
  stage: string;
  detail: string[];
}

export interface TraceHop {
  node: string;
  from: string;
  result: { stages: TraceStage[]; verdict: string; outcome: string; dropReason?: string; egress?: string; packet?: { src: number; dst: number; sport: number; dport: number } };
  overlay?: { to: string; outer: { src: string; dst: string; vni: number } };
}

export interface TracedPath {
  request: { from: string; to: string; proto: string };
  hops: TraceHop[];
  verdict: string;
  outcome: string;
  dropReason?: string;
  path: string[];
  continuesOn?: string;
}
