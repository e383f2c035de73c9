import { checkedArgument, COMMON_OPTIONS, parseCommand, UsageError } from '../args.js';
import { checkDnsLabel } from '../../cluster/names.js';
import { ClusterBusyError, takeStartLock } from '../lock.js';
import { startNodeProcess, UpError, waitReady } from '../node-process.js';
import { nodePid, readCluster, statePaths } from '../state.js';
import { formatStatus } from '../status.js';
import { usage } from './usage.js';
import { METRICS_PORT_OPTION, parseMetricsPort } from '../metrics-port.js';

/**
 * `podwire restart-node NODE`: starts again the process of a node that died (kill -9, a
 * crash). It is started as up starts it, from the cluster in the state directory, so its pods
 * come back with the same addresses; the agent clears what the dead process left of them.
 */
export async function restartNodeCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand('restart-node', argv, { ...COMMON_OPTIONS, pcap: { type: 'string' }, ...METRICS_PORT_OPTION });
  if (values.help === true) return usage();
  if (positionals.length !== 1) throw new UsageError('podwire restart-node: usage: podwire restart-node NODE [--pcap DIR] [--metrics-port N]');
  const metricsPort = parseMetricsPort('restart-node', values['metrics-port']);
  const nodeName = checkedArgument('restart-node', 'NODE', positionals[0], checkDnsLabel);
  const { name, paths } = statePaths(values);
  const cluster = readCluster(paths);
  if (cluster === undefined) throw new UsageError(`cluster ${name} is not running`);
  const node = cluster.nodes.find((n) => n.name === nodeName);
  if (node === undefined) throw new UsageError(`node ${nodeName} is not in cluster ${name} (nodes: ${cluster.nodes.map((n) => n.name).join(', ')})`);
  const out = (line: string) => process.stdout.write(`${line}\n`);
  let lock;
  try {
    lock = takeStartLock(paths, name);
  } catch (err) {
    if (err instanceof ClusterBusyError) throw new UpError(err.message);
    throw err;
  }
  try {
    const running = nodePid(paths, node.name);
    if (running !== undefined) throw new UsageError(`node ${node.name} of cluster ${name} is running (pid ${running}); restart-node starts a node whose process is gone`);
    const pid = await startNodeProcess(paths, node, values.pcap, metricsPort);
    out(`  started ${node.name} (pid ${pid}), pods ${cluster.pods.filter((p) => p.node === node.name).length}`);
    const status = await waitReady(paths, cluster, out, undefined, [node]);
    out(`\n${formatStatus(status)}`);
  } finally {
    lock.release();
  }
  return 0;
}
