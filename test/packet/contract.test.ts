/** The contract of src/packet/index.ts, checked across every view at once. */
import test from 'ava';
import { ArpView } from '../../src/packet/arp.js';
import { PacketError } from '../../src/packet/errors.js';
import { EthernetView } from '../../src/packet/ethernet.js';
import { IcmpView } from '../../src/packet/icmp.js';
import { Ipv4View } from '../../src/packet/ipv4.js';
import { Ipv6View } from '../../src/packet/ipv6.js';
import { TcpView } from '../../src/packet/tcp.js';
import { UdpView } from '../../src/packet/udp.js';
import { VxlanView } from '../../src/packet/vxlan.js';

const views = { ArpView, EthernetView, IcmpView, Ipv4View, Ipv6View, TcpView, UdpView, VxlanView };

test('every view refuses a window that does not lie inside the buffer', (t) => {
  const buf = Buffer.alloc(80, 0x45);
  for (const [name, View] of Object.entries(views)) {
    const view = new View();
    t.is(view.check(buf, -4, 64), PacketError.Truncated, `${name}: negative offset`);
    t.is(view.check(buf, 40, 64), PacketError.Truncated, `${name}: past the end`);
    t.is(view.check(buf, 0, 3), PacketError.Truncated, `${name}: shorter than any header`);
  }
});
