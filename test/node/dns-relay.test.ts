/**
 * The DNS relay's per-pod bound: a pod holds at most its share of the node's relay
 * connections, and a slot it gives back is its again.
 */
import test from 'ava';
import { parseIpv4 } from '../../src/packet/addr.js';
import { PER_POD_CONNECTIONS, relayLimits } from '../../src/node/workloads/dns-relay.js';

const pod = (s: string) => parseIpv4(s)!;

test('one pod gets at most its share of relay connections; others are not touched by it', (t) => {
  const limit = relayLimits();
  for (let i = 0; i < PER_POD_CONNECTIONS; i++) t.true(limit.admit(pod('10.244.1.5')));
  t.false(limit.admit(pod('10.244.1.5')), 'the next one is refused');
  t.true(limit.admit(pod('10.244.1.6')), 'another pod still gets one');
  limit.release(pod('10.244.1.5'));
  t.true(limit.admit(pod('10.244.1.5')), 'a released slot is the pod\'s again');
  t.false(limit.admit(pod('10.244.1.5')));
});
