/**
 * What the forwarding path allocates per frame, measured by test/helpers/alloc-measure.ts in
 * a child process: batches of 25,600 frames cross two nodes (pod -> bridge -> conntrack -> route ->
 * VXLAN -> the other node -> pod), pod to pod and through a ClusterIP, with ports that
 * copy into preallocated slabs as the native ones do.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MEASURE = fileURLToPath(new URL('../helpers/alloc-measure.js', import.meta.url));

test('the forwarding path allocates at most two heap numbers a frame per node, where it allocated 110-190 bytes (pod to pod and through a ClusterIP)', (t) => {
  // A young generation of 256 MiB: the run fits without a collection, so the heap's growth
  // is what the frames allocated.
  const out = execFileSync(process.execPath, ['--min-semi-space-size=256', '--max-semi-space-size=256', MEASURE, 'measure'], { encoding: 'utf8' });
  const { udp, tcp } = JSON.parse(out) as { udp: number; tcp: number };
  t.log(`heap bytes per frame, both nodes' walks together: UDP pod to pod ${udp.toFixed(1)}, TCP through a ClusterIP ${tcp.toFixed(1)}`);
  // Before the MACs became bytes and the time a cell, the same walk allocated 110-190 bytes
  // a frame. What is left is one heap number (16 bytes) per node's walk, sometimes two when
  // the machine is busy and the optimising compiler decides otherwise: 64 is the bound.
  t.true(udp < 64, `UDP: ${udp.toFixed(1)} bytes a frame`);
  t.true(tcp < 64, `TCP: ${tcp.toFixed(1)} bytes a frame`);
});
