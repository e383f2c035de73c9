/**
 * podwire against the kernel's bridge + vxlan, side by side: iperf3 TCP, ping RTT and a
 * 64-byte UDP flood, pod to pod across nodes and on one node, plus podwire's CPU per
 * frame and the io benchmark's tuntap2 figures. The work is in bench/dataplane/.
 *
 * `npm run bench -- dataplane`, or alone: `node dist/scripts/bench-dataplane.js [--quick]`.
 * PODWIRE_DATAPLANE_QUICK=1 selects the 2-second variant under the harness too.
 */
import type { BenchModule } from './harness.js';
import { runDataplane } from './dataplane/run.js';

const dataplane: BenchModule = {
  name: 'dataplane',
  run: (ctx) => runDataplane({ quick: process.env.PODWIRE_DATAPLANE_QUICK === '1', selects: ctx.selects, log: ctx.log }),
};

export default dataplane;
