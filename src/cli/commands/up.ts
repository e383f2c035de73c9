import { formatIpv4 } from '../../packet/addr.js';
import { checkClusterNameOption, COMMON_OPTIONS, noArguments, parseCommand, UsageError } from '../args.js';
import { downCluster } from '../down.js';
import { nodePid } from '../state.js';
import { formatStatus } from '../status.js';
import { Interrupted, upCluster } from '../up.js';
import { StatePaths, DEFAULT_STATE_ROOT } from '../../node/names.js';
import { usage } from './usage.js';
import { METRICS_PORT_OPTION, parseMetricsPort } from '../metrics-port.js';
import { parseUiOptions, UI_OPTIONS } from '../ui-port.js';
import { stateDirSource } from '../ui-source.js';
import { serveUi, type UiServer } from '../../ui/server.js';

/** The exit code of a command stopped by SIGINT, as a shell reports it (128 + 2). */
const INTERRUPTED_CODE = 130;

/**
 * Ctrl-C or SIGTERM at any moment of `up` means "tear down what was started": the first one
 * aborts, the handlers stay installed for the whole command, so a second one only says that
 * the teardown is under way instead of killing podwire half way through it.
 */
function interruptOnSignals(): AbortController {
  const interrupt = new AbortController();
  const onSignal = () => {
    if (!interrupt.signal.aborted) interrupt.abort();
    else process.stderr.write('podwire up: still tearing down, one moment\n');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  return interrupt;
}

export async function upCommand(argv: string[]): Promise<number> {
  const interrupt = interruptOnSignals();
  try {
    return await runUp(argv, interrupt.signal);
  } catch (err) {
    if (err instanceof Interrupted) {
      process.stderr.write('podwire up: interrupted; what was started has been removed\n');
      return INTERRUPTED_CODE;
    }
    throw err;
  }
}

async function runUp(argv: string[], signal: AbortSignal): Promise<number> {
  const parsed = parseCommand('up', argv, {
    ...COMMON_OPTIONS,
    file: { type: 'string', short: 'f', multiple: true },
    detach: { type: 'boolean' },
    pcap: { type: 'string' },
    seed: { type: 'string' },
    ...METRICS_PORT_OPTION,
    ui: { type: 'boolean' },
    ...UI_OPTIONS,
  });
  const { values } = parsed;
  if (values.help === true) return usage();
  noArguments('up', parsed, 'files are given with -f FILE, the name with --name NAME');
  const seed = values.seed === undefined ? undefined : /^-?\d+$/.test(values.seed) ? Number(values.seed) : NaN;
  if (seed !== undefined && !Number.isSafeInteger(seed)) throw new UsageError(`--seed ${values.seed}: not an integer`);
  const name = values.name === undefined ? undefined : checkClusterNameOption(values.name);
  const metricsPort = parseMetricsPort('up', values['metrics-port']);
  if (values.ui !== true && (values.port !== undefined || values.address !== undefined)) throw new UsageError('podwire up: --port and --address are for the web view: give --ui too');
  if (values.ui === true && values.detach === true) throw new UsageError('podwire up: --ui serves the page while up runs in the foreground; with --detach, run podwire ui');
  const uiOptions = values.ui === true ? parseUiOptions('up', values) : undefined;
  const root = values['state-dir'] ?? DEFAULT_STATE_ROOT;
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const { cluster, paths, status } = await upCluster({
    files: values.file ?? [],
    name,
    paths: (n) => StatePaths.of(root, n),
    pcapDir: values.pcap,
    seed,
    ...(metricsPort !== undefined ? { metricsPort } : {}),
    out,
    signal,
  });
  out(`\n${formatStatus(status)}`);
  const client = cluster.pods.find((p) => p.name === 'client') ?? cluster.pods[0];
  const server = cluster.pods.find((p) => p !== client && p.containers.some((c) => /nginx|httpd|echo/.test(c.image)));
  const flag = cluster.settings.name === 'podwire' ? '' : ` --name ${cluster.settings.name}`;
  if (client !== undefined && server !== undefined) {
    const service = cluster.services.find((s) => s.clusterIP !== undefined && s.ports.length > 0);
    out(`try:  podwire exec${flag} ${client.name} -- ping -c 3 ${formatIpv4(server.ip)}`);
    if (service !== undefined) {
      out(`      podwire exec${flag} ${client.name} -- curl -s http://${service.name}/`);
      out(`      podwire exec${flag} ${client.name} -- dig ${service.name}.${service.namespace}.svc.${cluster.settings.clusterDomain}`);
      out(`      podwire trace${flag} ${client.node} --from ${client.name} --to ${formatIpv4(service.clusterIP!)}:${service.ports[0].port}`);
    } else {
      out(`      podwire exec${flag} ${client.name} -- curl -s http://${formatIpv4(server.ip)}/`);
    }
    out(`      podwire outside${flag} -- ping -c 1 ${formatIpv4(cluster.nodes[0].externalIP)}`);
  }
  if (values.pcap !== undefined) out(`      captures: ${values.pcap}/<node>.pcapng (tshark -r ...)`);
  if (uiOptions === undefined) out(`      podwire ui${flag}   (the web view: the map, live flows, the life of a packet)`);
  const scraped = status.nodes.flatMap((n) => (n.detail?.metrics !== undefined ? [`${n.name} ${n.detail.metrics.url}`] : []));
  if (scraped.length > 0) out(`      metrics: ${scraped.join(', ')}`);
  if (values.detach === true) {
    out(`cluster ${cluster.settings.name} keeps running; remove it with: podwire down${flag}`);
    return 0;
  }
  let ui: UiServer | undefined;
  if (uiOptions !== undefined) {
    // A page that cannot start (its port taken) leaves the cluster running, said so.
    ui = await serveUi(stateDirSource(cluster.settings.name, paths), { ...uiOptions, log: (line) => process.stderr.write(`${line}\n`) }).catch((err: Error) => {
      process.stderr.write(`podwire up: the web view did not start: ${err.message}\n`);
      return undefined;
    });
    if (ui !== undefined) out(`      web view: ${ui.url}`);
  }
  out('Ctrl-C tears the cluster down.');
  await new Promise<void>((resolve) => {
    // Signal listeners alone do not keep Node running; watching the nodes does, and says
    // when one of them dies while the cluster runs in the foreground.
    const reported = new Set<string>();
    const watch = setInterval(() => {
      for (const node of cluster.nodes) {
        if (nodePid(paths, node.name) === undefined && !reported.has(node.name)) {
          reported.add(node.name);
          process.stderr.write(`node ${node.name} is down (log: ${paths.nodeLog(node.name)})\n`);
        }
      }
    }, 2000);
    const stop = () => {
      clearInterval(watch);
      resolve();
    };
    if (signal.aborted) stop();
    else signal.addEventListener('abort', stop, { once: true });
  });
  await ui?.close();
  out('\ntearing down...');
  await downCluster(cluster.settings.name, paths);
  out(`cluster ${cluster.settings.name} removed`);
  return 0;
}
