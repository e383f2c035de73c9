import { COMMON_OPTIONS, parseCommand, UsageError } from '../args.js';
import { readCluster, statePaths } from '../state.js';
import { callControl } from '../../node/control.js';
import { askDns } from '../dns.js';
import { usage } from './usage.js';

export async function dnsCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand('dns', argv, { ...COMMON_OPTIONS, node: { type: 'string' }, tcp: { type: 'boolean' } });
  if (values.help === true) return usage();
  if (positionals.length < 1 || positionals.length > 2) throw new UsageError('podwire dns: usage: podwire dns NAME [TYPE]');
  const { name, paths } = statePaths(values);
  const cluster = readCluster(paths);
  if (cluster === undefined) throw new UsageError(`cluster ${name} is not running`);
  const node = values.node ?? cluster.nodes[0].name;
  const status = await callControl(paths.nodeSocket(node), 'status', {});
  if (status.dns === undefined) throw new Error(`node ${node} serves no DNS`);
  const lines = await askDns(status.dns.port, positionals[0], positionals[1] ?? 'A', values.tcp === true);
  process.stdout.write(lines);
  return 0;
}
