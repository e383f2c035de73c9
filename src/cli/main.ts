#!/usr/bin/env node
/**
 * The podwire command.
 *
 *   podwire up     [-f FILE]... [--name NAME] [--detach] [--pcap DIR] [--seed N]
 *   podwire down   [--name NAME]
 *   podwire status [--name NAME] [--json]
 *   podwire exec   [--name NAME] [-n NAMESPACE] POD -- CMD...
 *   podwire outside [--name NAME] -- CMD...
 *   podwire scale  [--name NAME] [-n NAMESPACE] deployment/NAME --replicas N
 *   podwire delete [--name NAME] [-n NAMESPACE] pod NAME
 *
 * Every command takes --state-dir DIR (default /run/podwire). Exit codes: 0 success, 1 a
 * failure (message on stderr), 2 a usage error; exec passes its command's code through.
 */
import { formatIpv4 } from '../packet/addr.js';
import { checkClusterName, COMMON_OPTIONS, parseCommand, UsageError } from './args.js';
import { downCluster } from './down.js';
import { findPodNamespace, runInNamespace } from './exec.js';
import { nodePid, readCluster, statePaths } from './state.js';
import { clusterStatus, formatStatus } from './status.js';
import { upCluster, UpError } from './up.js';
import { StatePaths, DEFAULT_STATE_ROOT } from '../node/names.js';
import { outsideNamespaceName } from '../node/outside.js';
import type { Cluster } from '../cluster/model.js';
import { deletePod, scaleDeployment } from '../cluster/mutate.js';
import { FileStore } from '../cluster/store.js';
import { parseIpv4 } from '../packet/addr.js';
import { callControl } from '../node/control.js';
import type { NodeStatus } from '../node/agent.js';
import { formatTrace, type TraceResult } from '../node/trace.js';
import { askDns } from './dns.js';

const USAGE = `usage: podwire COMMAND [options]

  up     [-f FILE]... [--name NAME] [--detach] [--pcap DIR] [--seed N]
         start a cluster from Kubernetes YAML (the built-in demo when no file is given)
  down   [--name NAME]                    remove everything the cluster created
  status [--name NAME] [--json]           nodes and pods
  exec   [--name NAME] [-n NAMESPACE] POD -- CMD...
                                          run CMD in the pod's network namespace
  outside [--name NAME] -- CMD...         run CMD in the outside world (the ext namespace:
                                          NodePort and LoadBalancer clients, egress targets)
  rules  [--name NAME] NODE [--format iptables|json]
                                          the node's service rules as iptables-save prints them
  conntrack [--name NAME] NODE [--json]   the node's connections, as conntrack -L prints them
  trace  [--name NAME] NODE --from POD --to IP:PORT[/tcp|udp] [-n NAMESPACE]
                                          push a packet through the node's live tables
  dns    [--name NAME] NAME [TYPE]        ask the cluster DNS
  scale  [--name NAME] [-n NAMESPACE] deployment/NAME --replicas N
  delete [--name NAME] [-n NAMESPACE] pod NAME

  common: --name NAME (default podwire), --state-dir DIR (default ${DEFAULT_STATE_ROOT})
`;

type Command = (argv: string[]) => Promise<number>;

const commands: Record<string, Command> = {
  async up(argv) {
    const { values } = parseCommand('up', argv, {
      ...COMMON_OPTIONS,
      file: { type: 'string', short: 'f', multiple: true },
      detach: { type: 'boolean' },
      pcap: { type: 'string' },
      seed: { type: 'string' },
    });
    if (values.help === true) return usage();
    const seed = values.seed === undefined ? undefined : Number(values.seed);
    if (seed !== undefined && !Number.isSafeInteger(seed)) throw new UsageError(`--seed ${values.seed}: not an integer`);
    const name = values.name === undefined ? undefined : checkClusterName(values.name);
    const root = values['state-dir'] ?? DEFAULT_STATE_ROOT;
    const out = (line: string) => process.stdout.write(`${line}\n`);
    const { cluster, paths, status } = await upCluster({
      files: values.file ?? [],
      name,
      paths: (n) => StatePaths.of(root, n),
      pcapDir: values.pcap,
      seed,
      out,
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
    if (values.detach === true) {
      out(`cluster ${cluster.settings.name} keeps running; remove it with: podwire down${flag}`);
      return 0;
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
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    out('\ntearing down...');
    await downCluster(cluster.settings.name, paths);
    out(`cluster ${cluster.settings.name} removed`);
    return 0;
  },

  async down(argv) {
    const { values } = parseCommand('down', argv, COMMON_OPTIONS);
    if (values.help === true) return usage();
    const { name, paths } = statePaths({ ...values, name: values.name === undefined ? undefined : checkClusterName(values.name) });
    const report = await downCluster(name, paths);
    const removed = report.processes + report.namespaces + report.links;
    if (removed === 0 && !report.stateDir) process.stdout.write(`cluster ${name} was not running\n`);
    else process.stdout.write(`cluster ${name} removed (${report.processes} node processes, ${report.namespaces} namespaces${report.links > 0 ? `, ${report.links} links` : ''})\n`);
    return 0;
  },

  async status(argv) {
    const { values } = parseCommand('status', argv, { ...COMMON_OPTIONS, json: { type: 'boolean' } });
    if (values.help === true) return usage();
    const { name, paths } = statePaths(values);
    const cluster = readCluster(paths);
    if (cluster === undefined) {
      if (values.json === true) process.stdout.write(`${JSON.stringify({ name, running: false })}\n`);
      else process.stderr.write(`cluster ${name} is not running (no ${paths.clusterFile})\n`);
      return 1;
    }
    const status = await clusterStatus(name, paths, cluster);
    process.stdout.write(values.json === true ? `${JSON.stringify({ ...status, running: true }, null, 2)}\n` : formatStatus(status));
    return 0;
  },

  async exec(argv) {
    const { values, positionals, rest } = parseCommand('exec', argv, { ...COMMON_OPTIONS, namespace: { type: 'string', short: 'n' } });
    if (values.help === true) return usage();
    if (positionals.length !== 1 || rest.length === 0) throw new UsageError('podwire exec: usage: podwire exec [-n NAMESPACE] POD -- CMD...');
    const { name, paths } = statePaths(values);
    const cluster = readCluster(paths);
    if (cluster === undefined) throw new UsageError(`cluster ${name} is not running`);
    const netns = findPodNamespace(cluster, values.namespace ?? 'default', positionals[0]);
    return runInNamespace(netns, rest);
  },

  async rules(argv) {
    const { values, positionals } = parseCommand('rules', argv, { ...COMMON_OPTIONS, format: { type: 'string' } });
    if (values.help === true) return usage();
    const format = values.format ?? 'iptables';
    if (positionals.length !== 1 || (format !== 'iptables' && format !== 'json')) throw new UsageError('podwire rules: usage: podwire rules NODE [--format iptables|json]');
    const answer = await askNode(values, positionals[0], 'rules', { format });
    process.stdout.write(format === 'json' ? `${JSON.stringify(answer, null, 2)}\n` : String(answer));
    return 0;
  },

  async conntrack(argv) {
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
  },

  async trace(argv) {
    const { values, positionals } = parseCommand('trace', argv, { ...COMMON_OPTIONS, from: { type: 'string' }, to: { type: 'string' }, namespace: { type: 'string', short: 'n' }, json: { type: 'boolean' } });
    if (values.help === true) return usage();
    const to = /^(\d+\.\d+\.\d+\.\d+):(\d+)(?:\/(tcp|udp))?$/.exec(values.to ?? '');
    const dst = to === null ? undefined : parseIpv4(to[1]);
    const dport = to === null ? NaN : Number(to[2]);
    if (positionals.length !== 1 || values.from === undefined || dst === undefined || !(dport >= 1 && dport <= 65535)) {
      throw new UsageError('podwire trace: usage: podwire trace NODE --from POD --to IP:PORT[/tcp|udp] [-n NAMESPACE]');
    }
    const result = (await askNode(values, positionals[0], 'trace', { pod: values.from, namespace: values.namespace ?? 'default', dst, dport, proto: to![3] ?? 'tcp' })) as TraceResult;
    process.stdout.write(values.json === true ? `${JSON.stringify(result, null, 2)}\n` : formatTrace(result));
    return 0;
  },

  async dns(argv) {
    const { values, positionals } = parseCommand('dns', argv, { ...COMMON_OPTIONS, node: { type: 'string' }, tcp: { type: 'boolean' } });
    if (values.help === true) return usage();
    if (positionals.length < 1 || positionals.length > 2) throw new UsageError('podwire dns: usage: podwire dns NAME [TYPE]');
    const { name, paths } = statePaths(values);
    const cluster = readCluster(paths);
    if (cluster === undefined) throw new UsageError(`cluster ${name} is not running`);
    const node = values.node ?? cluster.nodes[0].name;
    const status = (await callControl(paths.nodeSocket(node), 'status')) as NodeStatus;
    if (status.dns === undefined) throw new Error(`node ${node} serves no DNS`);
    const lines = await askDns(status.dns.port, positionals[0], positionals[1] ?? 'A', values.tcp === true);
    process.stdout.write(lines);
    return 0;
  },

  async scale(argv) {
    const { values, positionals } = parseCommand('scale', argv, { ...COMMON_OPTIONS, namespace: { type: 'string', short: 'n' }, replicas: { type: 'string' } });
    if (values.help === true) return usage();
    const target = positionals.length === 1 ? /^(?:deployment|deploy|deployments|deployment\.apps)\/(.+)$/.exec(positionals[0]) : null;
    const replicas = Number(values.replicas);
    if (target === null || values.replicas === undefined || !Number.isInteger(replicas)) {
      throw new UsageError('podwire scale: usage: podwire scale [-n NAMESPACE] deployment/NAME --replicas N');
    }
    const namespace = values.namespace ?? 'default';
    const { store, cluster } = openStore(values);
    store.writeDesired(scaleDeployment(cluster, namespace, target[1], replicas, Math.random));
    process.stdout.write(`deployment.apps/${target[1]} scaled\n`);
    return 0;
  },

  async delete(argv) {
    const { values, positionals } = parseCommand('delete', argv, { ...COMMON_OPTIONS, namespace: { type: 'string', short: 'n' } });
    if (values.help === true) return usage();
    const name = positionals.length === 2 && /^(pod|pods|po)$/.test(positionals[0]) ? positionals[1] : positionals.length === 1 ? /^(?:pod|pods|po)\/(.+)$/.exec(positionals[0])?.[1] : undefined;
    if (name === undefined) throw new UsageError('podwire delete: usage: podwire delete [-n NAMESPACE] pod NAME');
    const { store, cluster } = openStore(values);
    const { cluster: next, replacement } = deletePod(cluster, values.namespace ?? 'default', name, Math.random);
    store.writeDesired(next);
    process.stdout.write(`pod "${name}" deleted${replacement !== undefined ? ` (its ReplicaSet starts ${replacement.name})` : ''}\n`);
    return 0;
  },

  async outside(argv) {
    const { values, positionals, rest } = parseCommand('outside', argv, COMMON_OPTIONS);
    if (values.help === true) return usage();
    if (positionals.length !== 0 || rest.length === 0) throw new UsageError('podwire outside: usage: podwire outside [--name NAME] -- CMD...');
    const { name, paths } = statePaths(values);
    if (readCluster(paths) === undefined) throw new UsageError(`cluster ${name} is not running`);
    return runInNamespace(outsideNamespaceName(name), rest);
  },
};

/** One request to a node's control socket, with the node named on the command line. */
async function askNode(values: { name?: string | undefined; 'state-dir'?: string | undefined }, node: string, op: string, args: Record<string, unknown> = {}): Promise<unknown> {
  const { name, paths } = statePaths(values);
  const cluster = readCluster(paths);
  if (cluster === undefined) throw new UsageError(`cluster ${name} is not running`);
  if (!cluster.nodes.some((n) => n.name === node)) throw new UsageError(`node ${node} is not in cluster ${name} (nodes: ${cluster.nodes.map((n) => n.name).join(', ')})`);
  return callControl(paths.nodeSocket(node), op, args, 10_000);
}

function openStore(values: { name?: string | undefined; 'state-dir'?: string | undefined }): { store: FileStore; cluster: Cluster } {
  const { name, paths } = statePaths(values);
  const store = new FileStore(paths.dir);
  const cluster = store.readDesired();
  if (cluster === undefined) throw new UsageError(`cluster ${name} is not running`);
  return { store, cluster };
}

function usage(): number {
  process.stdout.write(USAGE);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  const run = Object.hasOwn(commands, command) ? commands[command] : undefined;
  if (run === undefined) {
    process.stderr.write(`podwire: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
    return 2;
  }
  try {
    return await run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    process.stderr.write(err instanceof UpError ? `${err.message}\n` : `podwire ${command}: ${(err as Error).message}\n`);
    return 1;
  }
}

main(process.argv.slice(2)).then((code) => process.exit(code));
