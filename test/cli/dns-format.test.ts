/**
 * `podwire dns` prints an answer as dig does: the status line with the header's flags, dig's
 * warning when recursion was asked for and is not available (every answer of the cluster
 * zone, as against CoreDNS), and the sections as zone-file lines.
 */
import test from 'ava';
import { buildQuery, formatResponse } from '../../src/cli/dns.js';
import { ctx, testResponder } from '../dns/helpers.js';

function answer(name: string, type: string, responder = testResponder()): Buffer {
  const query = buildQuery(name, type, 0x4242);
  const out = Buffer.alloc(4096);
  const r = responder.respond(query, 0, query.length, ctx(), out);
  return out.subarray(0, r.length);
}

test('a zone answer: aa, no ra, and dig\'s recursion warning', (t) => {
  t.is(
    formatResponse(answer('_http._tcp.web.default.svc.cLuStEr.LoCaL', 'SRV')),
    [
      ';; status: NOERROR, id: 16962, flags: qr aa rd',
      ';; WARNING: recursion requested but not available',
      '',
      ';; ANSWER SECTION:',
      '_http._tcp.web.default.svc.cLuStEr.LoCaL.\t30\tIN\tSRV\t0 100 80 web.default.svc.cLuStEr.LoCaL.',
      '',
      ';; ADDITIONAL SECTION:',
      'web.default.svc.cLuStEr.LoCaL.\t30\tIN\tA\t10.96.0.20',
      '',
    ].join('\n'),
  );
});

test('a forwarded answer with ra: no warning', (t) => {
  const msg = Buffer.from(answer('web.default.svc.cluster.local', 'A'));
  msg.writeUInt16BE(msg.readUInt16BE(2) | 0x0080, 2);
  t.false(formatResponse(msg).includes('WARNING'));
  t.regex(formatResponse(msg), /^;; status: NOERROR, id: 16962, flags: qr aa rd ra\n\n;; ANSWER SECTION:\n/);
});

test('bad bytes: a line saying so, never a throw', (t) => {
  t.is(formatResponse(Buffer.alloc(5)), ';; malformed answer (shorter than a header)\n');
  const cut = Buffer.from(answer('web.default.svc.cluster.local', 'A').subarray(0, 20));
  t.regex(formatResponse(cut), /;; malformed question\n$/);
});
