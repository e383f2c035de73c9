import test from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCidr, parseIpv4, parseMac } from '../../src/packet/addr.js';
import { emitEthernet, ETHERTYPE } from '../../src/packet/ethernet.js';
import { emitIcmp } from '../../src/packet/icmp.js';
import { emitIpv4, IPPROTO } from '../../src/packet/ipv4.js';
import { NodeCapture } from '../../src/node/capture.js';
import { Pipeline } from '../../src/datapath/pipeline.js';
import { FakeOverlay, FakePort } from '../helpers/fake-port.js';

const ip = (s: string) => parseIpv4(s)!;
const haveTshark = existsSync('/usr/bin/tshark');

// Skipped only where tshark is absent (scripts/setup.sh installs it).
(haveTshark ? test : test.skip)('a node capture shows pod frames and VXLAN with its VNI down to the inner ICMP', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pw-capture-'));
  try {
    const node = (n: number) => ({
      name: `node-${n}`,
      subnet: parseCidr(`10.244.${n}.0/24`)!,
      clusterCidr: parseCidr('10.244.0.0/16')!,
      gatewayIp: ip(`10.244.${n}.1`),
      gatewayMac: parseMac(`0a:58:0a:f4:0${n}:01`)!,
      vtepMac: parseMac(`0e:00:00:00:00:0${n}`)!,
      vni: 42,
      underlayMtu: 1500,
    });
    const p1 = new Pipeline(node(1), () => 0);
    const o1 = new FakeOverlay(ip('127.77.0.1'));
    p1.attachOverlay(o1);
    const peer = p1.peers.add({ node: 'node-2', subnet: node(2).subnet, vtepMac: node(2).vtepMac, underlayAddr: ip('127.77.0.2'), underlayPort: 4789 });
    const port = new FakePort('web');
    const podMac = parseMac('0a:58:0a:f4:01:02')!;
    const slot = p1.addPod('default/web', ip('10.244.1.2'), podMac, port);
    const path = join(dir, 'node-1.pcapng');
    const capture = new NodeCapture(path, { name: 'node-1', underlayAddr: o1.addr, underlayPort: 4789, vni: 42 }, [{ slot, name: 'default/web', ip: ip('10.244.1.2') }], [peer]);
    p1.tap = capture;

    const frame = Buffer.alloc(14 + 20 + 8 + 32, 0x61);
    emitEthernet({ dstMac: node(1).gatewayMac, srcMac: podMac, ethertype: ETHERTYPE.IPV4 }, frame, 0);
    emitIcmp({ kind: 'echoRequest', id: 9, seq: 3 }, frame, 34, 32);
    emitIpv4({ src: ip('10.244.1.2'), dst: ip('10.244.2.5'), protocol: IPPROTO.ICMP, ttl: 64, payloadLength: 40, dscp: 0, ecn: 0, identification: 5, dontFragment: true, moreFragments: false, fragmentOffsetBytes: 0 }, frame, 14);
    port.inject(frame);
    t.is(p1.counters.encapsulated, 1);
    capture.close();

    const out = execFileSync('tshark', ['-r', path, '-T', 'fields', '-E', 'separator=|', '-e', 'frame.interface_name', '-e', 'vxlan.vni', '-e', 'ip.dst', '-e', 'icmp.type'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    t.deepEqual(out.trim().split('\n'), ['default/web||10.244.2.5|8', 'vxlan:node-2|42|127.77.0.2,10.244.2.5|8']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
