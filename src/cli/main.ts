#!/usr/bin/env node
/**
 * The podwire command.
 *
 *   podwire up     [-f FILE]... [--name NAME] [--detach] [--pcap DIR] [--seed N] [--metrics-port N]
 *   podwire down   [--name NAME]
 *   podwire status [--name NAME] [--json]
 *   podwire exec   [--name NAME] [-n NAMESPACE] POD -- CMD...
 *   podwire outside [--name NAME] -- CMD...
 *   podwire scale  [--name NAME] [-n NAMESPACE] deployment/NAME --replicas N
 *   podwire delete [--name NAME] [-n NAMESPACE] pod NAME
 *   podwire restart-node [--name NAME] NODE [--pcap DIR] [--metrics-port N]
 *   podwire get    pods|services|endpoints|nodes|ingresses [-n NS|-A] [-o wide|json|yaml]
 *   podwire capture (--pod [NS/]POD | --node NODE [--iface IFACE]) [-w FILE|-] [--filter EXPR]
 *   podwire observe [--name NAME] [--node NODE] [-f] [--last N] [--since D] [filters] [-o compact|json|table]
 *   podwire ui     [--name NAME] [--port PORT] [--address IP] [--store URL]
 *
 * Several machines (the cluster in etcd):
 *
 *   podwire apply  -f FILE... --name NAME --store etcd://HOST:PORT[,HOST:PORT...]
 *   podwire join   --name NAME --store URL --node NODE [--underlay IP] [--label k=v]... [--detach] [--metrics-port N]
 *   podwire leave  --name NAME --node NODE
 *   podwire down   --name NAME --store URL
 *
 * and status, scale, delete, get and ui take --store URL (with --cacert, --cert, --key for TLS).
 *
 * Every command takes --state-dir DIR (default /run/podwire). Exit codes: 0 success, 1 a
 * failure (message on stderr), 2 a usage error; exec passes its command's code through.
 */
import { UsageError } from './args.js';
import { carryOnWhenReaderGoes, exitWhenFlushed } from './exit.js';
import { UpError } from './up.js';
import { USAGE } from './commands/usage.js';
import { upCommand } from './commands/up.js';
import { downCommand } from './commands/down.js';
import { statusCommand } from './commands/status.js';
import { execCommand } from './commands/exec.js';
import { rulesCommand } from './commands/rules.js';
import { conntrackCommand } from './commands/conntrack.js';
import { traceCommand } from './commands/trace.js';
import { observeCommand } from './commands/observe.js';
import { dnsCommand } from './commands/dns.js';
import { scaleCommand } from './commands/scale.js';
import { deleteCommand } from './commands/delete.js';
import { outsideCommand } from './commands/outside.js';
import { restartNodeCommand } from './commands/restart-node.js';
import { applyCommand } from './commands/apply.js';
import { joinCommand } from './commands/join.js';
import { leaveCommand } from './commands/leave.js';
import { getCommand } from './commands/get.js';
import { captureCommand } from './commands/capture.js';
import { uiCommand } from './commands/ui.js';

type Command = (argv: string[]) => Promise<number>;

const commands: Record<string, Command> = {
  up: upCommand,
  down: downCommand,
  status: statusCommand,
  exec: execCommand,
  rules: rulesCommand,
  conntrack: conntrackCommand,
  trace: traceCommand,
  observe: observeCommand,
  dns: dnsCommand,
  scale: scaleCommand,
  delete: deleteCommand,
  outside: outsideCommand,
  'restart-node': restartNodeCommand,
  apply: applyCommand,
  join: joinCommand,
  leave: leaveCommand,
  get: getCommand,
  capture: captureCommand,
  ui: uiCommand,
};

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

carryOnWhenReaderGoes();
void main(process.argv.slice(2)).then(exitWhenFlushed);
