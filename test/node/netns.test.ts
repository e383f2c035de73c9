import test from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { listeningTcpPorts, tcpListeners } from '../../src/node/netns.js';

// Lines as the kernel prints them (proc_net_tcp, tcp6_seq_show): LISTEN is state 0A.
const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 81234 1 0000000083e409a0 100 0 0 10 0
   1: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 81235 1 00000000df94a45d 100 0 0 10 0
   2: 0200F40A:0050 0300F40A:C350 01 00000000:00000000 00:00000000 00000000     0        0 81236 1 00000000df94a45e 20 4 30 10 -1
`;
const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 91234 1 0000000083e409a1 100 0 0 10 0
   1: 00000000000000000000000001000000:1F91 00000000000000000000000001000000:D431 06 00000000:00000000 03:00000ff8 00000000     0        0 0 3 00000000aa
`;

test('LISTEN sockets of /proc/net/tcp and tcp6 give their local ports; other states do not', (t) => {
  t.deepEqual(tcpListeners(TCP), [80, 8080]);
  t.deepEqual(tcpListeners(TCP6), [443]);
  t.deepEqual(tcpListeners(''), []);
  t.deepEqual(tcpListeners('garbage\n 0: zz:zz 0:0 0A\n 1: 00000000:0000 00000000:0000 0A'), []);
});

const canNetns = process.getuid?.() === 0;

test('listening ports are read through a process inside the namespace, never the root namespace', async (t) => {
  if (!canNetns) {
    t.pass('needs root for a network namespace (skipped)');
    return;
  }
  const ns = `pw-unit-ready-${process.pid}`;
  execFileSync('ip', ['netns', 'add', ns]);
  const children: ReturnType<typeof spawn>[] = [];
  try {
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    const py = `import socket,time\ns=socket.socket()\ns.bind(("127.0.0.1",7311))\ns.listen()\nprint("up",flush=True)\ntime.sleep(60)`;
    const server = spawn('ip', ['netns', 'exec', ns, 'python3', '-c', py], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(server);
    await once(server.stdout!, 'data');
    t.deepEqual([...(await listeningTcpPorts(ns, [server.pid!]))], [7311]);
    // A process outside the namespace (this one) is never read: nothing is reported.
    t.deepEqual([...(await listeningTcpPorts(ns, [process.pid]))], []);
    t.deepEqual([...(await listeningTcpPorts(ns, []))], []);
  } finally {
    for (const c of children) c.kill('SIGKILL');
    execFileSync('ip', ['netns', 'delete', ns]);
  }
});
