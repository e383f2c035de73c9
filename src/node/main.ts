/**
 * Entry point of a node process, started by `podwire up`:
 *
 *   node dist/src/node/main.js --state-dir DIR --node NAME [--pcap DIR]
 *
 * Reads the resolved cluster from DIR/cluster.json, brings the node up, prints "ready" on
 * stdout once its control socket answers, and tears everything down on SIGTERM or SIGINT.
 */
import './jit.js'; // first: V8 flags for the forwarding path
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Cluster } from '../cluster/model.js';
import { NodeAgent } from './agent.js';
import { StatePaths } from './names.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'state-dir': { type: 'string' },
      node: { type: 'string' },
      pcap: { type: 'string' },
    },
  });
  const stateDir = values['state-dir'];
  const nodeName = values.node;
  if (stateDir === undefined || nodeName === undefined) {
    process.stderr.write('usage: main.js --state-dir DIR --node NAME [--pcap DIR]\n');
    process.exit(2);
  }
  const paths = new StatePaths(stateDir);
  const cluster = JSON.parse(readFileSync(paths.clusterFile, 'utf8')) as Cluster;
  const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${nodeName}: ${line}\n`);
  let agent: NodeAgent | undefined;
  const shutdown = (code: number) => {
    void (async () => {
      await agent?.stop();
      process.exit(code);
    })();
  };
  process.on('SIGTERM', () => shutdown(0));
  process.on('SIGINT', () => shutdown(0));
  process.on('uncaughtException', (err) => {
    log(`fatal: ${err.stack ?? err.message}`);
    shutdown(1);
  });
  try {
    agent = await NodeAgent.start(cluster, nodeName, { paths, ...(values.pcap !== undefined ? { pcapDir: values.pcap } : {}), log });
  } catch (err) {
    log(`could not start: ${(err as Error).message}`);
    process.exit(1);
  }
  log(`up with ${agent.status().pods.length} pods`);
  process.stdout.write('ready\n');
}

void main();
