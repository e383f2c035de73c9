import { COMMON_OPTIONS, parseCommand, UsageError } from '../args.js';
import { askNode } from './common.js';
import { usage } from './usage.js';

export async function conntrackCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand('conntrack', argv, { ...COMMON_OPTIONS, json: { type: 'boolean' } });
  if (values.help === true) return usage();
  if (positionals.length !== 1) throw new UsageError('podwire conntrack: usage: podwire conntrack NODE [--json]');
  const answer = (await askNode(values, positionals[0], 'conntrack')) as { lines: string[]; entries: unknown[] };
  if (values.json === true) process.stdout.write(`${JSON.stringify(answer.entries, null, 2)}\n`);
  else {
    for (const line of answer.lines) process.stdout.write(`${line}\n`);
    process.stderr.write(`conntrack v1.4 (podwire): ${answer.lines.length} flow entries have been shown.\n`);
  }
  return 0;
}
