/**
 * Packet-flow tables in the manner of kube-proxy's `packetFlowTest`: over the named cluster,
 * each (source, destination, port) flow has an expected outcome: DNAT to which endpoints (all
 * of those listed must be reachable, and nothing else), masquerade or not, REJECT, DROP, or no
 * service at all. Every case is run through the interpreter over the generated rules and
 * through the compiled table, with one random number per endpoint so that each endpoint the
 * chain can pick is picked.
 */
import test, { type ExecutionContext } from 'ava';
import { formatIpv4 } from '../../src/packet/addr.js';
import { RecentLists, traverse } from '../../src/kube/interpreter.js';
import { kubeProxyRules, nodeLocalAddresses, type ServiceRuleInputs } from '../../src/kube/kube-proxy.js';
import { AffinityTable, FlowDecision, FlowVerdict, compileServiceTable } from '../../src/kube/service-table.js';
import { drawFromUnit } from '../../src/kube/rules.js';
import { goldenCluster, inputsFor, ip } from './service-fixtures.js';

const TCP = 6;
const UDP = 17;

interface FlowCase {
  readonly name: string;
  readonly src: string;
  readonly dst: string;
  readonly port: number;
  readonly proto?: number;
  /** "ip:port, ip:port" (the reachable endpoints), "REJECT", "DROP" or "" (no service). */
  readonly output: string;
  readonly masq: boolean;
}

/** What one flow came to, as kube-proxy's packetFlowTest spells it. */
interface Result {
  readonly output: string;
  readonly masq: boolean;
}

function viaRules(inputs: ServiceRuleInputs, c: FlowCase, random: number): Result {
  const locals = nodeLocalAddresses(inputs);
  const walked = traverse(
    kubeProxyRules(inputs),
    { src: ip(c.src), dst: ip(c.dst), proto: c.proto ?? TCP, sport: 43210, dport: c.port, mark: 0, ctstate: 'NEW', inRole: 'pod' },
    { random: () => random, now: 0, recent: new RecentLists() },
    { origin: 'arriving', isLocalAddress: (a) => locals.includes(a >>> 0) },
  );
  if (walked.verdict !== 'ACCEPT') return { output: walked.verdict, masq: false };
  return { output: walked.dnat ? `${formatIpv4(walked.dnat.address)}:${walked.dnat.port}` : '', masq: walked.snat?.kind === 'masquerade' };
}

function viaTable(inputs: ServiceRuleInputs, c: FlowCase, random: number): Result {
  const d = new FlowDecision();
  compileServiceTable(inputs).classify(ip(c.src), ip(c.dst), c.proto ?? TCP, c.port, drawFromUnit(random), new AffinityTable(16), d);
  if (d.verdict === FlowVerdict.Reject) return { output: 'REJECT', masq: false };
  if (d.verdict === FlowVerdict.Drop) return { output: 'DROP', masq: false };
  return { output: d.verdict === FlowVerdict.Dnat ? `${formatIpv4(d.dnatAddress)}:${d.dnatPort}` : '', masq: d.masquerade };
}

function runFlows(t: ExecutionContext, inputs: ServiceRuleInputs, cases: readonly FlowCase[]): void {
  for (const c of cases) {
    const expected = c.output.split(', ');
    for (const [how, run] of [['rules', viaRules], ['table', viaTable]] as const) {
      const seen = new Set<string>();
      // One draw in the middle of each endpoint's share, for up to four endpoints.
      for (const random of [0.125, 0.375, 0.625, 0.875, 1 / 6, 0.5, 5 / 6]) {
        const r = run(inputs, c, random);
        seen.add(r.output);
        t.is(r.masq, c.masq, `${c.name} (${how}): masquerade`);
      }
      t.deepEqual([...seen].sort(), [...expected].sort(), `${c.name} (${how}): outcomes`);
    }
  }
}

const WEB = '10.244.1.10:8080, 10.244.1.2:8080, 10.244.2.2:8080';
const EDGE_ALL = '10.244.1.4:8443, 10.244.2.4:8443';

test('node-1: cluster IPs, NodePorts, load-balancer IPs, no endpoints, egress', (t) => {
  runFlows(t, inputsFor(goldenCluster(), 'node-1', ip('192.0.2.11')), [
    { name: 'pod to cluster IP', src: '10.244.1.3', dst: '10.96.0.20', port: 80, output: WEB, masq: false },
    { name: 'pod to cluster IP, wrong port', src: '10.244.1.3', dst: '10.96.0.20', port: 81, output: '', masq: false },
    { name: 'pod to cluster IP, wrong protocol', src: '10.244.1.3', dst: '10.96.0.20', port: 80, proto: UDP, output: '', masq: false },
    { name: 'hairpin: the endpoint to its own service', src: '10.244.2.3', dst: '10.96.0.30', port: 8080, output: '10.244.2.3:8080', masq: true },
    { name: 'outside to cluster IP', src: '192.0.2.7', dst: '10.96.0.30', port: 8080, output: '10.244.2.3:8080', masq: true },
    { name: 'outside to NodePort', src: '192.0.2.7', dst: '192.0.2.11', port: 30080, output: '10.244.2.3:8080', masq: true },
    { name: 'outside to NodePort at the gateway address', src: '192.0.2.7', dst: '10.244.1.1', port: 30080, output: '10.244.2.3:8080', masq: true },
    { name: 'pod to NodePort', src: '10.244.1.3', dst: '192.0.2.11', port: 30080, output: '10.244.2.3:8080', masq: true },
    { name: 'outside to node, not a NodePort', src: '192.0.2.7', dst: '192.0.2.11', port: 8080, output: '', masq: false },
    { name: 'NodePort on another node address is not ours', src: '192.0.2.7', dst: '192.0.2.12', port: 30080, output: '', masq: false },
    { name: 'outside to LB IP, Local policy: local endpoint, source kept', src: '192.0.2.7', dst: '192.0.2.100', port: 443, output: '10.244.1.4:8443', masq: false },
    { name: 'outside to Local NodePort', src: '192.0.2.7', dst: '192.0.2.11', port: 30443, output: '10.244.1.4:8443', masq: false },
    { name: 'pod to LB IP: short-circuit to every endpoint', src: '10.244.1.3', dst: '192.0.2.100', port: 443, output: EDGE_ALL, masq: false },
    { name: 'node to LB IP: every endpoint, masqueraded', src: '192.0.2.11', dst: '192.0.2.100', port: 443, output: EDGE_ALL, masq: true },
    { name: 'pod to Local service cluster IP', src: '10.244.1.3', dst: '10.96.0.40', port: 443, output: EDGE_ALL, masq: false },
    { name: 'outside to Local service cluster IP', src: '192.0.2.7', dst: '10.96.0.40', port: 443, output: EDGE_ALL, masq: true },
    { name: 'UDP service without endpoints', src: '10.244.1.3', dst: '10.96.0.53', port: 53, proto: UDP, output: 'REJECT', masq: false },
    { name: 'same address over TCP is no service', src: '10.244.1.3', dst: '10.96.0.53', port: 53, output: '', masq: false },
    { name: 'NodePort without endpoints', src: '192.0.2.7', dst: '192.0.2.11', port: 30060, output: 'REJECT', masq: false },
    { name: 'cluster IP without endpoints', src: '10.244.1.3', dst: '10.96.0.60', port: 80, output: 'REJECT', masq: false },
    { name: 'pod to the outside world', src: '10.244.1.3', dst: '8.8.8.8', port: 53, proto: UDP, output: '', masq: true },
    { name: 'pod to pod on another node', src: '10.244.1.3', dst: '10.244.2.2', port: 8080, output: '', masq: false },
    { name: 'pod to an unused service address', src: '10.244.1.3', dst: '10.96.0.200', port: 80, output: '', masq: false },
    { name: 'pod to multicast', src: '10.244.1.3', dst: '224.0.0.251', port: 5353, proto: UDP, output: '', masq: false },
    { name: 'outside through the node to the outside', src: '192.0.2.7', dst: '8.8.8.8', port: 53, output: '', masq: false },
  ]);
});

test('node-2 holds the other edge endpoint; node-3 holds none of them', (t) => {
  runFlows(t, inputsFor(goldenCluster(), 'node-2', ip('192.0.2.12')), [
    { name: 'outside to LB IP from node-2', src: '192.0.2.7', dst: '192.0.2.100', port: 443, output: '10.244.2.4:8443', masq: false },
    { name: 'outside to Local NodePort on node-2', src: '192.0.2.7', dst: '192.0.2.12', port: 30443, output: '10.244.2.4:8443', masq: false },
    { name: 'node-1 NodePort address is not node-2', src: '192.0.2.7', dst: '192.0.2.11', port: 30443, output: '', masq: false },
  ]);
  runFlows(t, inputsFor(goldenCluster(), 'node-3', ip('192.0.2.13')), [
    { name: 'outside to LB IP, no local endpoint: DROP', src: '192.0.2.7', dst: '192.0.2.100', port: 443, output: 'DROP', masq: false },
    { name: 'outside to Local NodePort, no local endpoint: DROP', src: '192.0.2.7', dst: '192.0.2.13', port: 30443, output: 'DROP', masq: false },
    { name: 'pods still reach every endpoint', src: '10.244.3.2', dst: '192.0.2.100', port: 443, output: EDGE_ALL, masq: false },
    { name: 'and the node too, masqueraded', src: '192.0.2.13', dst: '192.0.2.13', port: 30443, output: EDGE_ALL, masq: true },
    { name: 'Cluster policy NodePort still works', src: '192.0.2.7', dst: '192.0.2.13', port: 30080, output: '10.244.2.3:8080', masq: true },
  ]);
});

test('ClientIP affinity: a client sticks to its endpoint until the timeout, on both sides', (t) => {
  const inputs = inputsFor(goldenCluster(), 'node-1', ip('192.0.2.11'));
  const rules = kubeProxyRules(inputs);
  const table = compileServiceTable(inputs);
  const locals = nodeLocalAddresses(inputs);
  const recent = new RecentLists();
  const affinity = new AffinityTable(16);
  const d = new FlowDecision();
  const client = ip('10.244.1.3');
  const flow = (random: number, now: number): [string, string] => {
    const walked = traverse(
      rules,
      { src: client, dst: ip('10.96.0.40'), proto: TCP, sport: 40000, dport: 443, mark: 0, ctstate: 'NEW', inRole: 'pod' },
      { random: () => random, now, recent },
      { origin: 'arriving', isLocalAddress: (a) => locals.includes(a >>> 0) },
    );
    affinity.setTime(now);
    table.classify(client, ip('10.96.0.40'), TCP, 443, drawFromUnit(random), affinity, d);
    return [formatIpv4(walked.dnat!.address), formatIpv4(d.dnatAddress)];
  };
  t.deepEqual(flow(0.9, 100), ['10.244.2.4', '10.244.2.4'], 'first choice by the draw');
  t.deepEqual(flow(0.1, 200), ['10.244.2.4', '10.244.2.4'], 'pinned, whatever the draw');
  t.deepEqual(flow(0.1, 800), ['10.244.2.4', '10.244.2.4'], 'exactly at the 600 s timeout: still pinned');
  t.deepEqual(flow(0.1, 1400.5), ['10.244.1.4', '10.244.1.4'], 'past the timeout: the draw decides again');
  t.is(recent.lastSeen('KUBE-SEP-QMS4Y2WNLVHPV45O', client), 1400.5);
});
