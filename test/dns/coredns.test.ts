/**
 * CoreDNS's kubernetes plugin tests, asked of podwire's responder: the fixtures and the
 * expected answers of test/dns/coredns-cases.ts. Each case is asked twice, so the second
 * answer comes from the precompiled cache, and every answer must be authoritative without
 * RA, as the plugin writes it.
 */
import test from 'ava';
import fc from 'fast-check';
import { computeEndpoints } from '../../src/cluster/endpoints.js';
import { buildZone } from '../../src/dns/zone.js';
import { Responder } from '../../src/dns/responder.js';
import { clientPolicy } from '../../src/dns/policy.js';
import { cluster } from '../cluster/helpers.js';
import { comparable, HANDLER_CASES, HANDLER_YAML, REVERSE_CASES, REVERSE_YAML, type CoreDnsCase } from './coredns-cases.js';
import { ask } from './helpers.js';

/** A responder for the cluster of `yaml`, and a client address a pod of node-1 would have. */
function responderFor(yaml: string): { responder: Responder; clientAddr: number } {
  const c = cluster(yaml);
  // Hand-written Endpoints carry their own readiness; no pod is asked about.
  const responder = new Responder({ zone: buildZone(c, computeEndpoints(c, new Map()), { serial: 1499347823 }), policy: clientPolicy([c.settings.podCIDR]) });
  return { responder, clientAddr: c.nodes[0].podCIDR.base + 2 };
}

function table(title: string, yaml: string, cases: readonly CoreDnsCase[]): void {
  const { responder, clientAddr } = responderFor(yaml);
  for (const c of cases) {
    test(`${title}: ${c.q} ${c.type} → ${c.rcode} (${c.from})`, (t) => {
      for (const round of ['built', 'cached']) {
        const hits = responder.status().answerCache.hits;
        const reply = ask(responder, c.q, c.type, { ctx: { clientAddr } });
        if (round === 'cached') t.is(responder.status().answerCache.hits, hits + 1, 'the second answer is the precompiled one');
        t.is(reply.rcode, c.rcode, round);
        t.true(reply.packet.flag_aa, `${round}: authoritative`);
        t.false(reply.packet.flag_ra, `${round}: no recursion available`);
        t.deepEqual(comparable(reply.answer), comparable(c.answer), `${round}: answer`);
        t.deepEqual(comparable(reply.authority), comparable(c.authority), `${round}: authority`);
        t.deepEqual(comparable(reply.additional), comparable(c.additional), `${round}: additional`);
      }
    });
  }
}

table('handler', HANDLER_YAML, HANDLER_CASES);
table('reverse', REVERSE_YAML, REVERSE_CASES);

test('the comparison is not blind: a wrong address, a missing record or another serial field would show', (t) => {
  t.notDeepEqual(comparable(['a. 5 IN A 10.0.0.1']), comparable(['a. 5 IN A 10.0.0.2']));
  t.notDeepEqual(comparable(['a. 5 IN A 10.0.0.1', 'a. 5 IN A 10.0.0.2']), comparable(['a. 5 IN A 10.0.0.1']));
  t.deepEqual(comparable(['z. 5 IN SOA ns.dns.z. hostmaster.z. 1 7200 1800 86400 5']), comparable(['z. 5 IN SOA ns.dns.z. hostmaster.z. 2 7200 1800 86400 5']));
  t.notDeepEqual(comparable(['z. 5 IN SOA ns.dns.z. hostmaster.z. 1 7200 1800 86400 5']), comparable(['z. 5 IN SOA ns.dns.z. hostmaster.z. 1 7200 1800 86400 30']));
});

test('property: whatever the letter case of a question, the precompiled answer is the plain one, and SRV targets end in the zone as asked', (t) => {
  const c = cluster(HANDLER_YAML);
  const zone = buildZone(c, computeEndpoints(c, new Map()), { serial: 1499347823 });
  const policy = clientPolicy([c.settings.podCIDR]);
  const plain = new Responder({ zone, policy, answerCache: false });
  const cached = new Responder({ zone, policy });
  const clientAddr = c.nodes[0].podCIDR.base + 2;
  const questions = HANDLER_CASES.map((k) => ({ q: k.q.replace(/\.$/, ''), type: k.type }));
  fc.assert(
    fc.property(fc.constantFrom(...questions), fc.array(fc.boolean(), { minLength: 64, maxLength: 64 }), fc.integer({ min: 0, max: 0xffff }), ({ q, type }, mask, id) => {
      const name = [...q].map((ch, i) => (mask[i % 64] ? ch.toUpperCase() : ch.toLowerCase())).join('');
      const a = ask(plain, name, type, { id, edns: 1232, ctx: { clientAddr } });
      // Twice: the first may build and store, the second is a hit whichever case stored it.
      ask(cached, name, type, { id, edns: 1232, ctx: { clientAddr } });
      const b = ask(cached, name, type, { id, edns: 1232, ctx: { clientAddr } });
      if (!a.bytes.equals(b.bytes)) return false;
      const apex = name.slice(name.length - 'cluster.local'.length);
      return b.answer.filter((l) => l.includes(' IN SRV ')).every((l) => l.endsWith(`.${apex}.`)) && b.additional.every((l) => l.split(' ')[0].endsWith(`.${apex}.`));
    }),
    { numRuns: 500 },
  );
  t.true(cached.status().answerCache.hits >= 500);
});
