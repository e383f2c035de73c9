import { checkedArgument, COMMON_OPTIONS, parseCommand, UsageError } from '../args.js';
import { checkDnsLabel } from '../../cluster/names.js';
import { askNode } from './common.js';
import { usage } from './usage.js';

export async function rulesCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand('rules', argv, { ...COMMON_OPTIONS, format: { type: 'string' }, backend: { type: 'string' } });
  if (values.help === true) return usage();
  const format = values.format ?? 'iptables';
  const backend = values.backend ?? 'nft';
  const usageLine = 'podwire rules: usage: podwire rules NODE [--format iptables|json] [--backend nft|legacy]';
  if (positionals.length !== 1 || (format !== 'iptables' && format !== 'json')) throw new UsageError(usageLine);
  if (backend !== 'nft' && backend !== 'legacy') throw new UsageError(`podwire rules: --backend must be nft or legacy, got ${JSON.stringify(backend)}\n${usageLine.slice('podwire rules: '.length)}`);
  const answer = await askNode(values, checkedArgument('rules', 'NODE', positionals[0], checkDnsLabel), 'rules', { format, backend });
  process.stdout.write(typeof answer === 'string' ? answer : `${JSON.stringify(answer, null, 2)}\n`);
  return 0;
}
