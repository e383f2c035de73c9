import { checkedArgument, COMMON_OPTIONS, namespaceOption, parseCommand, UsageError } from '../args.js';
import { checkDnsLabel, checkPodName } from '../../cluster/names.js';
import { parseIpv4 } from '../../packet/addr.js';
import { formatTrace } from '../../node/trace.js';
import { askNode } from './common.js';
import { usage } from './usage.js';

const TRACE_USAGE = 'podwire trace: usage: podwire trace NODE --from POD|outside:IP|node:NAME --to IP:PORT[/tcp|udp] [--sport N] [--src IP] [-n NAMESPACE] [--json]';

export async function traceCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand('trace', argv, {
    ...COMMON_OPTIONS,
    from: { type: 'string' },
    to: { type: 'string' },
    sport: { type: 'string' },
    src: { type: 'string' },
    namespace: { type: 'string', short: 'n' },
    json: { type: 'boolean' },
  });
  if (values.help === true) return usage();
  const to = /^(\d+\.\d+\.\d+\.\d+):(\d+)(?:\/(tcp|udp))?$/.exec(values.to ?? '');
  const dst = to === null ? undefined : parseIpv4(to[1]);
  const dport = to === null ? NaN : Number(to[2]);
  if (positionals.length !== 1 || values.from === undefined || dst === undefined || !(dport >= 1 && dport <= 65535)) throw new UsageError(TRACE_USAGE);
  const node = checkedArgument('trace', 'NODE', positionals[0], checkDnsLabel);
  const namespace = namespaceOption('trace', values.namespace);
  const sport = values.sport === undefined ? undefined : Number(values.sport);
  if (sport !== undefined && !(/^\d+$/.test(values.sport!) && sport >= 1 && sport <= 65535)) throw new UsageError(`podwire trace: --sport ${values.sport}: not a port from 1 to 65535`);
  const src = values.src === undefined ? undefined : parseIpv4(values.src);
  if (values.src !== undefined && src === undefined) throw new UsageError(`podwire trace: --src ${values.src}: not an IPv4 address`);
  const from = values.from;
  if (from.startsWith('outside:')) {
    if (parseIpv4(from.slice('outside:'.length)) === undefined) throw new UsageError(`podwire trace: --from ${from}: not an IPv4 address`);
  } else if (from.startsWith('node:')) {
    checkedArgument('trace', '--from node:', from.slice('node:'.length), checkDnsLabel);
  } else {
    checkedArgument('trace', '--from', from, checkPodName);
  }
  const result = await askNode(values, node, 'trace', { from, namespace, dst, dport, sport, src, proto: to![3] === 'udp' ? 'udp' : 'tcp' });
  process.stdout.write(values.json === true ? `${JSON.stringify(result, null, 2)}\n` : formatTrace(result));
  return 0;
}
