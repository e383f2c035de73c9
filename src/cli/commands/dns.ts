import { checkedArgument, COMMON_OPTIONS, parseCommand, UsageError } from '../args.js';
import { checkDnsLabel } from '../../cluster/names.js';
import { readCluster, statePaths } from '../state.js';
import { callControl } from '../../node/control.js';
import { askDns } from '../dns.js';
import { usage } from './usage.js';

export async function dnsCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand('dns', argv, { ...COMMON_OPTIONS, node: { type: 'string' }, tcp: { type: 'boolean' } });
  if (values.help === true) return usage();
  if (positionals.length < 1 || positionals.length > 2) throw new UsageError('podwire dns: usage: podwire dns NAME [TYPE]');
  // A name is asked for as given; only an empty one (or an empty type) is no question at all.
  const [qname, qtype = 'A'] = positionals;
  if (qname.trim() === '' || qtype.trim() === '') throw new UsageError('podwire dns: NAME and TYPE must not be empty (usage: podwire dns NAME [TYPE], "." for the root)');
  if (values.node !== undefined) checkedArgument('dns', '--node', values.node, checkDnsLabel);
  const { name, paths } = statePaths(values);
  const cluster = readCluster(paths);
  if (cluster === undefined) throw new UsageError(`cluster ${name} is not running`);
  const node = values.node ?? cluster.nodes[0].name;
  if (!cluster.nodes.some((n) => n.name === node)) throw new UsageError(`node ${node} is not in cluster ${name} (nodes: ${cluster.nodes.map((n) => n.name).join(', ')})`);
  const status = await callControl(paths.nodeSocket(node), 'status', {});
  if (status.dns === undefined) throw new Error(`node ${node} serves no DNS`);
  const lines = await askDns(status.dns.port, qname, qtype, values.tcp === true);
  process.stdout.write(lines);
  return 0;
}
