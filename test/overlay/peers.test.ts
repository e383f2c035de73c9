import test from 'ava';
import { OverlayPeers, type Lease } from '../../src/overlay/peers.js';
import { parseCidr, parseIpv4, parseMac } from '../../src/packet/addr.js';

const lease = (node: string, subnet: string, mac: string, addr: string): Lease => ({
  node,
  subnet: parseCidr(subnet)!,
  vtepMac: parseMac(mac)!,
  underlayAddr: parseIpv4(addr)!,
  underlayPort: 4789,
});

const node2 = lease('node-2', '10.244.2.0/24', '0e:00:00:00:00:02', '127.77.1.2');
const node3 = lease('node-3', '10.244.3.0/24', '0e:00:00:00:00:03', '127.77.1.3');

test('one route, one neighbour and one FDB entry per remote node, as flannel keeps them', (t) => {
  const peers = new OverlayPeers();
  peers.add(node2);
  peers.add(node3);
  t.deepEqual(peers.routes(), [
    '10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink',
    '10.244.3.0/24 via 10.244.3.0 dev flannel.1 onlink',
  ]);
  t.deepEqual(peers.neighbours(), [
    '10.244.2.0 dev flannel.1 lladdr 0e:00:00:00:00:02 PERMANENT',
    '10.244.3.0 dev flannel.1 lladdr 0e:00:00:00:00:03 PERMANENT',
  ]);
  t.deepEqual(peers.fdb(), [
    '0e:00:00:00:00:02 dev flannel.1 dst 127.77.1.2 port 4789 self permanent',
    '0e:00:00:00:00:03 dev flannel.1 dst 127.77.1.3 port 4789 self permanent',
  ]);
  t.is(peers.peerFor(parseIpv4('10.244.3.9')!)?.node, 'node-3');
  t.is(peers.peerFor(parseIpv4('10.244.4.9')!), undefined);
});

test('a removed lease takes its route with it', (t) => {
  const peers = new OverlayPeers();
  peers.add(node2);
  t.true(peers.remove('node-2'));
  t.false(peers.remove('node-2'));
  t.is(peers.peerFor(parseIpv4('10.244.2.9')!), undefined);
  t.deepEqual(peers.routes(), []);
});

test('a snapshot adds, removes and replaces; unchanged peers keep their id', (t) => {
  const peers = new OverlayPeers();
  peers.applySnapshot([node2, node3]);
  const id2 = peers.get('node-2')!.id;
  const moved3 = { ...node3, underlayAddr: parseIpv4('127.77.1.33')! };
  peers.applySnapshot([node2, moved3]);
  t.is(peers.get('node-2')!.id, id2);
  t.is(peers.peerFor(parseIpv4('10.244.3.1')!)!.underlayAddr, parseIpv4('127.77.1.33')!);
  peers.applySnapshot([moved3]);
  t.is(peers.get('node-2'), undefined);
  t.is(peers.peerFor(parseIpv4('10.244.2.1')!), undefined);
});

test('two nodes on one machine share its address on different ports: each datagram finds its own peer', (t) => {
  const peers = new OverlayPeers();
  const a = { ...lease('node-a', '10.244.4.0/24', '0e:00:00:00:00:04', '10.9.0.1'), underlayPort: 4789 };
  const b = { ...lease('node-b', '10.244.5.0/24', '0e:00:00:00:00:05', '10.9.0.1'), underlayPort: 4790 };
  peers.add(a);
  peers.add(b);
  const addr = parseIpv4('10.9.0.1')!;
  t.is(peers.peerAt(addr, 4789)?.node, 'node-a');
  t.is(peers.peerAt(addr, 4790)?.node, 'node-b');
  t.is(peers.peerAt(addr, 4791), undefined, 'a port no VTEP holds is no peer');
  peers.remove('node-a');
  t.is(peers.peerAt(addr, 4789), undefined);
  t.is(peers.peerAt(addr, 4790)?.node, 'node-b', 'removing one leaves the other');
  peers.remove('node-b');
  t.is(peers.peerAt(addr, 4790), undefined);
});
