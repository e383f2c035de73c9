import { checkedArgument, COMMON_OPTIONS, namespaceOption, parseCommand, UsageError } from '../args.js';
import { checkDnsLabel, checkPodName } from '../../cluster/names.js';
import { findPod, runAttached } from '../exec.js';
import { readCluster, statePaths } from '../state.js';
import { askNode } from './common.js';
import { usage } from './usage.js';

const EXEC_USAGE = 'podwire exec: usage: podwire exec [-n NAMESPACE] [-c CONTAINER] [--user UID[:GID]] POD -- CMD...';

/**
 * `podwire exec POD -- CMD...`: CMD in the pod as `kubectl exec` runs it, in all of the
 * pod's namespaces, as the container's user with its capabilities and environment. The pod's
 * node says how (it knows the pod's pause); this process runs it with the terminal attached.
 */
export async function execCommand(argv: string[]): Promise<number> {
  const { values, positionals, rest } = parseCommand('exec', argv, {
    ...COMMON_OPTIONS,
    namespace: { type: 'string', short: 'n' },
    container: { type: 'string', short: 'c' },
    user: { type: 'string', short: 'u' },
  });
  if (values.help === true) return usage();
  if (positionals.length !== 1 || rest.length === 0) throw new UsageError(EXEC_USAGE);
  const namespace = namespaceOption('exec', values.namespace);
  const podName = checkedArgument('exec', 'POD', positionals[0], checkPodName);
  const container = values.container === undefined ? undefined : checkedArgument('exec', '-c', values.container, checkDnsLabel);
  const user = values.user === undefined ? undefined : parseUser(values.user);
  const { name, paths } = statePaths(values);
  const cluster = readCluster(paths);
  if (cluster === undefined) throw new UsageError(`cluster ${name} is not running`);
  const pod = findPod(cluster, namespace, podName);
  const command = await askNode(values, pod.node, 'exec', {
    namespace,
    pod: pod.name,
    ...(container !== undefined ? { container } : {}),
    ...(user !== undefined ? { user } : {}),
    argv: rest,
  });
  return runAttached(command.argv, command.env);
}

/** `--user UID[:GID]`, numeric as securityContext's runAsUser and runAsGroup are. */
export function parseUser(text: string): { uid: number; gid?: number } {
  const m = /^(\d{1,10})(?::(\d{1,10}))?$/.exec(text);
  const uid = m === null ? NaN : Number(m[1]);
  const gid = m?.[2] === undefined ? undefined : Number(m[2]);
  if (!(uid <= 0x7fffffff) || (gid !== undefined && !(gid <= 0x7fffffff))) throw new UsageError(`podwire exec: --user ${text}: not UID[:GID] (numbers from 0 to 2147483647)`);
  return { uid, ...(gid !== undefined ? { gid } : {}) };
}
