import { checkDnsSubdomain } from '../../cluster/names.js';
import { checkedArgument, COMMON_OPTIONS, noArguments, parseCommand, UsageError } from '../args.js';
import { pause, UpError } from '../node-process.js';
import { nodePid, processAlive, statePaths } from '../state.js';
import { usage } from './usage.js';

const LEAVE_TIMEOUT_MS = 60_000;

/** `podwire leave --name NAME --node NODE`: the node agent on this machine leaves the cluster cleanly. */
export async function leaveCommand(argv: string[]): Promise<number> {
  const parsed = parseCommand('leave', argv, { ...COMMON_OPTIONS, node: { type: 'string' } });
  const { values } = parsed;
  if (values.help === true) return usage();
  noArguments('leave', parsed, 'the node is named with --node NODE');
  if (values.node === undefined) throw new UsageError('podwire leave: --node NODE is required');
  const node = checkedArgument('leave', '--node', values.node, checkDnsSubdomain);
  const { name, paths } = statePaths(values);
  const pid = nodePid(paths, node);
  if (pid === undefined) {
    process.stdout.write(`node ${node} of cluster ${name} does not run on this machine (state in ${paths.dir})\n`);
    return 1;
  }
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + LEAVE_TIMEOUT_MS;
  while (processAlive(pid)) {
    if (Date.now() > deadline) throw new UpError(`node ${node} (pid ${pid}) is still leaving after ${LEAVE_TIMEOUT_MS / 1000} s (log ${paths.nodeLog(node)})`);
    await pause(100, undefined);
  }
  process.stdout.write(`node ${node} left cluster ${name}\n`);
  return 0;
}
