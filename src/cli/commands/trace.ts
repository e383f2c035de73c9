import { COMMON_OPTIONS, parseCommand, UsageError } from '../args.js';
import { parseIpv4 } from '../../packet/addr.js';
import { formatTrace } from '../../node/trace.js';
import { askNode } from './common.js';
import { usage } from './usage.js';

export async function traceCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand('trace', argv, { ...COMMON_OPTIONS, from: { type: 'string' }, to: { type: 'string' }, namespace: { type: 'string', short: 'n' }, json: { type: 'boolean' } });
  if (values.help === true) return usage();
  const to = /^(\d+\.\d+\.\d+\.\d+):(\d+)(?:\/(tcp|udp))?$/.exec(values.to ?? '');
  const dst = to === null ? undefined : parseIpv4(to[1]);
  const dport = to === null ? NaN : Number(to[2]);
  if (positionals.length !== 1 || values.from === undefined || dst === undefined || !(dport >= 1 && dport <= 65535)) {
    throw new UsageError('podwire trace: usage: podwire trace NODE --from POD --to IP:PORT[/tcp|udp] [-n NAMESPACE]');
  }
  const result = await askNode(values, positionals[0], 'trace', { pod: values.from, namespace: values.namespace ?? 'default', dst, dport, proto: to![3] === 'udp' ? 'udp' : 'tcp' });
  process.stdout.write(values.json === true ? `${JSON.stringify(result, null, 2)}\n` : formatTrace(result));
  return 0;
}
