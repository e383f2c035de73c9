/**
 * Measures what the responder allocates per query on the precompiled path, in a process of
 * its own (run by test/dns/alloc.test.ts with a young generation large enough for the whole
 * run, so heap growth is what the queries allocated): an A answer, and an SRV answer asked
 * in 16 letter-case variants, whose targets the answer cache patches to each variant's case.
 * Prints bytes per query as JSON.
 */
import { ctx, makeQuery, testResponder } from '../dns/helpers.js';

const QUERIES = 200_000;

function variants(name: string, type: string): Buffer[] {
  return Array.from({ length: 16 }, (_, v) => {
    let i = 0;
    return makeQuery(name.replace(/[a-z]/g, (ch) => ((v >> i++ % 4) & 1 ? ch.toUpperCase() : ch)), type, { id: 0x1000 + v, edns: 1232 });
  });
}

function bytesPerQuery(queries: Buffer[]): number {
  const responder = testResponder();
  const out = Buffer.alloc(4096);
  const context = ctx();
  let sink = 0;
  for (let i = 0; i < 20_000; i++) sink += responder.respond(queries[i & 15], 0, queries[i & 15].length, context, out).length;
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < QUERIES; i++) sink += responder.respond(queries[i & 15], 0, queries[i & 15].length, context, out).length;
  const after = process.memoryUsage().heapUsed;
  if (sink === 0) throw new Error('no answers');
  return (after - before) / QUERIES;
}

const a = bytesPerQuery(variants('web.default.svc.cluster.local', 'A'));
const srv = bytesPerQuery(variants('_pg._tcp.db.default.svc.cluster.local', 'SRV'));
process.stdout.write(JSON.stringify({ a, srv }));
