/**
 * A live capture on a forwarding path in memory: the verdict of each received frame as its
 * record's comment (records after it moved along intact), only the selected interfaces, the
 * filter, and a full buffer dropping and counting frames while the stream stays whole.
 * tshark reads every stream these tests make.
 */
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileFilter } from '../../src/pcap/filter.js';
import { readCapture } from '../../src/pcap/reader.js';
import { SplitClock } from '../../src/pcap/pcapng.js';
import { LiveCapture, type CaptureSelection } from '../../src/node/live-capture.js';
import { cluster as loadYaml } from '../cluster/helpers.js';
import { HARDENED_YAML } from '../helpers/hardened-cluster.js';
import { echoRequest, nextMac, udpDatagram, wireCluster } from '../helpers/datapath.js';

const haveTshark = spawnSync('tshark', ['--version']).status === 0;

function setup(selection: CaptureSelection, filter = '', bufferBytes?: number) {
  const c = wireCluster(loadYaml(HARDENED_YAML), { random: () => 0.5 });
  const node = c.nodes[0];
  const pipeline = node.pipeline;
  const capture = new LiveCapture({
    node: { name: node.node.name, underlayAddr: node.node.underlay, underlayPort: 4789, vni: c.cluster.settings.vni },
    selection,
    podAt: (slot) => pipeline.tables.slots[slot],
    matcher: compileFilter(filter),
    ...(bufferBytes !== undefined ? { bufferBytes } : {}),
    clock: new SplitClock(1_700_000_000_000_000_000n, () => 0),
  });
  pipeline.tap = capture;
  const client = c.pod('client');
  const send = (dst: number, frame: (spec: ReturnType<typeof specTo>) => Buffer) => c.port(client).inject(frame(specTo(dst)));
  const specTo = (dst: number) => ({ srcMac: client.mac, dstMac: nextMac(c.cluster, client, dst), src: client.ip, dst });
  return { c, capture, send };
}

/** tshark's fields of `stream` (from a file: tshark refuses the socket a Node child's stdin is). */
function tshark(stream: Buffer, fields: string[]): string[][] {
  const dir = mkdtempSync(join(tmpdir(), 'pw-live-'));
  const file = join(dir, 'live.pcapng');
  writeFileSync(file, stream);
  let out: string;
  try {
    out = execFileSync('tshark', ['-r', file, '-T', 'fields', '-E', 'separator=|', ...fields.flatMap((f) => ['-e', f])], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return out.trim() === '' ? [] : out.trim().split('\n').map((l) => l.split('|'));
}

test('each received frame carries its verdict; the records after it are moved along whole', (t) => {
  const { c, capture, send } = setup({ iface: undefined });
  const victim = c.pod('victim', 'locked');
  const echo = c.pod('echo');
  send(echo.ip, (s) => udpDatagram(s, 40000, 5353)); // forwarded to echo on node-2: in, and out by the overlay
  send(victim.ip, (s) => udpDatagram(s, 40001, 9999)); // policy-denied
  send(c.cluster.nodes[0].gateway, (s) => echoRequest(s)); // answered by the node
  const stream = capture.take();
  const read = readCapture(stream);
  const records = read.records;
  t.is(records.length, 5, 'in, out; in; in, reply');
  t.deepEqual(records.map((r) => r.comment), ['FORWARDED', undefined, 'DROPPED: policy-denied (NetworkPolicy does not allow this new connection)', 'STOLEN: answered or held by the node (ARP, ICMP echo, DNS, a fragment)', undefined]);
  t.deepEqual(records.map((r) => read.interfaces[r.interfaceId]?.name), ['default/client', 'vxlan:node-2', 'default/client', 'default/client', 'default/client']);
  t.deepEqual(capture.stats, { records: 5, dropped: 0 });
});

(haveTshark ? test : test.skip)('tshark reads the commented stream, and a pod capture holds that pod only', (t) => {
  const { c, capture, send } = setup({ pod: 'default/client' });
  send(c.pod('echo').ip, (s) => udpDatagram(s, 40000, 5353));
  send(c.pod('victim', 'locked').ip, (s) => udpDatagram(s, 40001, 9999));
  const rows = tshark(capture.take(), ['frame.interface_name', 'udp.dstport', 'frame.comment']);
  t.deepEqual(rows, [
    ['default/client', '5353', 'FORWARDED'],
    ['default/client', '9999', 'DROPPED: policy-denied (NetworkPolicy does not allow this new connection)'],
  ]);
});

test('the filter keeps matching frames only, and a verdict finds no record of a filtered frame', (t) => {
  const { c, capture, send } = setup({ iface: 'default/client' }, 'udp port 9999');
  send(c.pod('echo').ip, (s) => udpDatagram(s, 40000, 5353));
  send(c.pod('victim', 'locked').ip, (s) => udpDatagram(s, 40001, 9999));
  const { records } = readCapture(capture.take());
  t.is(records.length, 1);
  t.regex(records[0].comment ?? '', /^DROPPED: policy-denied/);
});

(haveTshark ? test : test.skip)('a full buffer drops and counts frames; what was kept reads whole, taken or not', (t) => {
  const { c, capture, send } = setup({ iface: undefined }, '', 1);
  const echo = c.pod('echo');
  for (let i = 0; i < 2000; i++) send(echo.ip, (s) => udpDatagram(s, 40000 + (i % 100), 5353, 1000));
  const { records, dropped } = capture.stats;
  t.true(dropped > 0, 'the buffer filled');
  t.is(records + dropped, 4000, 'each frame in and out either kept or counted');
  const rows = tshark(capture.take(), ['frame.number']);
  t.is(rows.length, records);
  // Taken, the buffer takes frames again.
  send(echo.ip, (s) => udpDatagram(s, 50000, 5353));
  t.is(capture.stats.records, records + 2);
});
