import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promises as fs } from 'node:fs';
import { checkDnsSubdomain, checkLabelKey, checkLabelValue } from '../../cluster/names.js';
import { parseIpv4 } from '../../packet/addr.js';
import { callControl } from '../../node/control.js';
import { checkClusterNameOption, checkedArgument, COMMON_OPTIONS, noArguments, parseCommand, UsageError } from '../args.js';
import { pause, UpError } from '../node-process.js';
import { closeFd, makeStateDir, nodePid, openPrivateLog, statePaths } from '../state.js';
import { STORE_OPTIONS, storeArguments, storeConnection } from '../store-option.js';
import { usage } from './usage.js';
import { METRICS_PORT_OPTION, parseMetricsPort } from '../metrics-port.js';

const NODE_MAIN = fileURLToPath(new URL('../../node/main.js', import.meta.url));
const READY_TIMEOUT_MS = 90_000;

/**
 * `podwire join --name NAME --store URL --node NODE`: this machine's node agent for NODE.
 * In the foreground until SIGINT or SIGTERM, which leave the cluster cleanly; --detach
 * returns once the node is up.
 */
export async function joinCommand(argv: string[]): Promise<number> {
  const parsed = parseCommand('join', argv, {
    ...COMMON_OPTIONS,
    ...STORE_OPTIONS,
    node: { type: 'string' },
    underlay: { type: 'string' },
    'underlay-port': { type: 'string' },
    label: { type: 'string', multiple: true },
    detach: { type: 'boolean' },
    pcap: { type: 'string' },
    ...METRICS_PORT_OPTION,
  });
  const { values } = parsed;
  if (values.help === true) return usage();
  noArguments('join', parsed, 'the node is named with --node NODE');
  if (storeConnection('join', values) === undefined) throw new UsageError('podwire join: --store etcd://HOST:PORT is required');
  if (values.name === undefined) throw new UsageError('podwire join: --name NAME is required');
  if (values.node === undefined) throw new UsageError('podwire join: --node NODE is required');
  checkClusterNameOption(values.name);
  const node = checkedArgument('join', '--node', values.node, checkDnsSubdomain);
  if (values.underlay !== undefined && parseIpv4(values.underlay) === undefined) throw new UsageError(`podwire join: --underlay ${values.underlay}: not an IPv4 address`);
  const metricsPort = parseMetricsPort('join', values['metrics-port']);
  const port = values['underlay-port'];
  if (port !== undefined && !(/^\d+$/.test(port) && Number(port) >= 1 && Number(port) <= 65535)) throw new UsageError(`podwire join: --underlay-port ${port}: not a UDP port`);
  const labels = (values.label ?? []).map((l) => {
    const at = l.indexOf('=');
    if (at < 0) throw new UsageError(`podwire join: --label ${l}: expected key=value`);
    const bad = checkLabelKey(l.slice(0, at)) ?? checkLabelValue(l.slice(at + 1));
    if (bad !== undefined) throw new UsageError(`podwire join: --label ${l}: ${bad}`);
    return l;
  });
  const { name, paths } = statePaths(values);
  if (nodePid(paths, node) !== undefined) throw new UsageError(`node ${node} of cluster ${name} already runs on this machine (podwire leave --name ${name} --node ${node})`);
  makeStateDir(paths);
  const args = [
    NODE_MAIN,
    '--state-dir', paths.dir,
    '--node', node,
    '--cluster', name,
    ...storeArguments(values),
    ...(values.underlay !== undefined ? ['--underlay', values.underlay] : []),
    ...(port !== undefined ? ['--underlay-port', port] : []),
    ...labels.flatMap((l) => ['--label', l]),
    ...(values.pcap !== undefined ? ['--pcap', values.pcap] : []),
    ...(metricsPort !== undefined ? ['--metrics-port', String(metricsPort)] : []),
  ];
  const logPath = paths.nodeLog(node);
  const log = openPrivateLog(logPath);
  const detach = values.detach === true;
  const child = spawn(process.execPath, args, { detached: detach, stdio: ['ignore', log, detach ? log : 'inherit'] });
  closeFd(log);
  if (child.pid === undefined) throw new UpError(`node ${node} could not be started (see ${logPath})`);
  let exited: number | null | undefined;
  child.on('exit', (code) => {
    exited = code;
  });
  // In the foreground, Ctrl-C and SIGTERM ask the agent to leave; it exits when it has.
  const leave = () => child.kill('SIGTERM');
  if (!detach) {
    process.on('SIGINT', leave);
    process.on('SIGTERM', leave);
  }
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (exited !== undefined) {
      const tail = (await fs.readFile(logPath, 'utf8').catch(() => '')).trim().split('\n').slice(-10).join('\n');
      throw new UpError(`node ${node} exited while joining:\n${tail}`);
    }
    const status = await callControl(paths.nodeSocket(node), 'status', {}, 1000).catch(() => undefined);
    if (status !== undefined && status.pid === child.pid) {
      process.stdout.write(`node ${node} joined cluster ${name}: subnet ${status.podCIDR}, underlay ${status.underlay}, ${status.pods.length} pods (pid ${child.pid}, log ${logPath})${status.metrics !== undefined ? `, metrics ${status.metrics.url}` : ''}\n`);
      break;
    }
    if (Date.now() > deadline) {
      child.kill('SIGTERM');
      throw new UpError(`node ${node} did not come up within ${READY_TIMEOUT_MS / 1000} s (log ${logPath})`);
    }
    await pause(200, undefined);
  }
  if (detach) {
    child.unref();
    process.stdout.write(`it keeps running; it leaves with: podwire leave --name ${name} --node ${node}\n`);
    return 0;
  }
  process.stdout.write('Ctrl-C leaves the cluster.\n');
  await new Promise<void>((resolve) => (exited !== undefined ? resolve() : child.on('exit', () => resolve())));
  process.stdout.write(`node ${node} left cluster ${name}\n`);
  return exited === 0 || exited === null ? 0 : 1;
}
