import test from 'ava';
import { ringFlowsProcessed } from '../../src/metrics/hubble.js';
import { FlowKind, FlowRing } from '../../src/datapath/flow-ring.js';

test("a ring's counters as hubble_flows_processed_total's types and verdicts; what it never saw is absent", (t) => {
  const ring = new FlowRing(8);
  const source = ringFlowsProcessed(ring);
  t.deepEqual([...source.flowsProcessed()], []);
  for (const kind of [FlowKind.Connection, FlowKind.Connection, FlowKind.Translation, FlowKind.Drop, FlowKind.PolicyVerdict, FlowKind.PolicyVerdict, FlowKind.ConnectionEnd, FlowKind.DnsRequest, FlowKind.DnsResponse]) ring.claim(kind);
  ring.allowedVerdicts = 1;
  t.deepEqual([...source.flowsProcessed()], [
    { type: 'Trace', subtype: '', verdict: 'FORWARDED', count: 3 },
    { type: 'Trace', subtype: '', verdict: 'TRANSLATED', count: 1 },
    { type: 'Drop', subtype: '', verdict: 'DROPPED', count: 1 },
    { type: 'PolicyVerdict', subtype: '', verdict: 'FORWARDED', count: 1 },
    { type: 'PolicyVerdict', subtype: '', verdict: 'DROPPED', count: 1 },
    { type: 'L7', subtype: 'dns', verdict: 'FORWARDED', count: 2 },
  ]);
  for (let i = 0; i < 20; i++) ring.claim(FlowKind.Drop);
  t.is([...source.flowsProcessed()].find((f) => f.type === 'Drop')?.count, 21, 'counted since the start, not what the ring still holds');
});
