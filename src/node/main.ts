/**
 * Entry point of a node process. Started by `podwire up` (one machine: the resolved cluster
 * is in the state directory):
 *
 *   node dist/src/node/main.js --state-dir DIR --node NAME [--pcap DIR]
 *
 * or by `podwire join` (several machines: the cluster is in etcd):
 *
 *   node dist/src/node/main.js --state-dir DIR --node NAME --store etcd://H:P[,H:P] --cluster NAME
 *        [--cacert F --cert F --key F] [--underlay IP] [--underlay-port N] [--label k=v]... [--pcap DIR]
 *
 * and either takes --metrics-port N (its /metrics on 127.0.0.1:N; default 0, any free port).
 *
 * Brings the node up, prints "ready" on stdout once its control socket answers, and tears
 * everything down on SIGTERM or SIGINT (a joined node leaves the cluster).
 */
import './jit.js'; // first: V8 flags for the forwarding path
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseIpv4 } from '../packet/addr.js';
import { NodeAgent } from './agent.js';
import { StatePaths } from './names.js';
import { decodeClusterJson } from '../cluster/cluster-json.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'state-dir': { type: 'string' },
      node: { type: 'string' },
      pcap: { type: 'string' },
      store: { type: 'string' },
      cluster: { type: 'string' },
      cacert: { type: 'string' },
      cert: { type: 'string' },
      key: { type: 'string' },
      underlay: { type: 'string' },
      'underlay-port': { type: 'string' },
      label: { type: 'string', multiple: true },
      'metrics-port': { type: 'string' },
    },
  });
  const stateDir = values['state-dir'];
  const nodeName = values.node;
  if (stateDir === undefined || nodeName === undefined) {
    process.stderr.write('usage: main.js --state-dir DIR --node NAME [--pcap DIR] [--store URL --cluster NAME ...]\n');
    process.exit(2);
  }
  const metricsText = values['metrics-port'];
  const metricsPort = metricsText === undefined ? undefined : Number(metricsText);
  if (metricsPort !== undefined && !(Number.isInteger(metricsPort) && metricsPort >= 0 && metricsPort <= 65535)) {
    process.stderr.write(`--metrics-port ${metricsText}: not a TCP port\n`);
    process.exit(2);
  }
  const paths = new StatePaths(stateDir);
  const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${nodeName}: ${line}\n`);
  let stop: (() => Promise<void>) | undefined;
  let shuttingDown = false;
  const shutdown = (code: number) => {
    if (shuttingDown) return;
    shuttingDown = true;
    void (async () => {
      await stop?.();
      process.exit(code);
    })();
  };
  process.on('SIGTERM', () => shutdown(0));
  process.on('SIGINT', () => shutdown(0));
  process.on('uncaughtException', (err) => {
    log(`fatal: ${err.stack ?? err.message}`);
    shutdown(1);
  });
  let agent: NodeAgent;
  try {
    if (values.store !== undefined) {
      // Only a joined node loads the etcd client (gRPC and all): `podwire up`'s nodes never need it.
      const [{ joinCluster }, { parseEtcdUrl }] = await Promise.all([import('./joined.js'), import('../store/connection.js')]);
      const joined = await joinCluster({
        connection: {
          endpoints: parseEtcdUrl(values.store),
          ...(values.cacert !== undefined ? { tls: { cacert: values.cacert, ...(values.cert !== undefined ? { cert: values.cert } : {}), ...(values.key !== undefined ? { key: values.key } : {}) } } : {}),
        },
        cluster: values.cluster ?? 'podwire',
        node: nodeName,
        ...(values.underlay !== undefined ? { underlay: parseIpv4(values.underlay) } : {}),
        ...(values['underlay-port'] !== undefined ? { underlayPort: Number(values['underlay-port']) } : {}),
        labels: Object.fromEntries((values.label ?? []).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)])),
        paths,
        ...(values.pcap !== undefined ? { pcapDir: values.pcap } : {}),
        ...(metricsPort !== undefined ? { metricsPort } : {}),
        log,
        onRemoved: () => shutdown(0),
      });
      agent = joined.agent;
      stop = () => joined.stop();
      writeFileSync(paths.nodePid(nodeName), `${process.pid}\n`, { mode: 0o600 });
    } else {
      const cluster = decodeClusterJson(readFileSync(paths.clusterFile, 'utf8'));
      const started = await NodeAgent.start(cluster, nodeName, { paths, ...(values.pcap !== undefined ? { pcapDir: values.pcap } : {}), ...(metricsPort !== undefined ? { metricsPort } : {}), log });
      agent = started;
      stop = () => started.stop();
    }
  } catch (err) {
    log(`could not start: ${(err as Error).message}`);
    process.exit(1);
  }
  if (shuttingDown) return;
  log(`up with ${agent.status().pods.length} pods`);
  process.stdout.write('ready\n');
}

void main();
