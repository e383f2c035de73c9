/**
 * `podwire capture`: a pcapng stream of a pod's eth0, or of a node's interfaces, taken
 * while the cluster runs, to a file or to stdout for a reader on a pipe:
 *
 *   podwire capture --pod client -w - | tcpdump -r - -nn
 *   podwire capture --node node-1 --iface vxlan:node-2 -w - | wireshark -k -i -
 *
 * The node filters (--filter, a subset of pcap syntax: src/pcap/filter.ts) and buffers; this
 * command writes each chunk whole with one blocking write, so whatever ends it (Ctrl-C,
 * SIGTERM, the reader closing the pipe) leaves the output on a record boundary. At the end
 * it says on stderr how many packets were captured and how many the node dropped because
 * the reader was slower than the traffic. -B sets the node's buffer for the capture (KiB,
 * default 4096), as tcpdump's -B sets the kernel's.
 */
import { openSync, closeSync, writeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { COMMON_OPTIONS, parseCommand, UsageError } from '../args.js';
import { compileFilter, FilterError } from '../../pcap/filter.js';
import type { CaptureArgs, CaptureChunk } from '../../node/control-protocol.js';
import { readCluster, statePaths } from '../state.js';
import { ReaderGone, streamFromNode } from './common.js';
import { usage } from './usage.js';

const USAGE_LINE = 'podwire capture: usage: podwire capture (--pod [NS/]POD | --node NODE [--iface IFACE]) [-w FILE|-] [--filter EXPR] [-s SNAPLEN] [-B KiB]';

/**
 * Writes all of `data` to `fd`; a non-blocking descriptor that is full is waited out on a
 * timer (signals are still seen meanwhile, and the chunk is finished before the capture
 * ends). EPIPE: the reader went away.
 */
async function writeAll(fd: number, data: Buffer): Promise<void> {
  let at = 0;
  while (at < data.length) {
    try {
      at += writeSync(fd, data, at, data.length - at);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EPIPE') throw new ReaderGone('the reader of the capture went away');
      if (code !== 'EAGAIN') throw err;
      await sleep(2);
    }
  }
}

interface Target {
  node: string;
  args: CaptureArgs;
}

function target(values: { name?: string; 'state-dir'?: string; pod?: string; node?: string; iface?: string; namespace?: string }): Target {
  if (values.pod === undefined && values.node === undefined) throw new UsageError(USAGE_LINE);
  if (values.pod !== undefined && values.iface !== undefined) throw new UsageError('podwire capture: --iface is for --node; a pod has one interface, its eth0');
  if (values.pod === undefined) return { node: values.node!, args: values.iface !== undefined ? { iface: values.iface } : {} };
  const slash = values.pod.indexOf('/');
  const namespace = slash >= 0 ? values.pod.slice(0, slash) : (values.namespace ?? 'default');
  const name = slash >= 0 ? values.pod.slice(slash + 1) : values.pod;
  if (namespace === '' || name === '') throw new UsageError(`podwire capture: --pod ${values.pod}: expected [NAMESPACE/]POD`);
  const pod = `${namespace}/${name}`;
  if (values.node !== undefined) return { node: values.node, args: { pod } };
  const { name: cluster, paths } = statePaths(values);
  const model = readCluster(paths);
  if (model === undefined) throw new UsageError(`podwire capture: cluster ${cluster} has no state on this machine; name the pod's node with --node NODE`);
  const found = model.pods.find((p) => p.namespace === namespace && p.name === name);
  if (found === undefined) throw new UsageError(`podwire capture: pod ${pod} is not in cluster ${cluster}`);
  return { node: found.node, args: { pod } };
}

export async function captureCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand('capture', argv, {
    ...COMMON_OPTIONS,
    pod: { type: 'string' },
    namespace: { type: 'string', short: 'n' },
    node: { type: 'string' },
    iface: { type: 'string' },
    write: { type: 'string', short: 'w' },
    filter: { type: 'string' },
    snaplen: { type: 'string', short: 's' },
    'buffer-size': { type: 'string', short: 'B' },
  });
  if (values.help === true) return usage();
  if (positionals.length > 0) throw new UsageError(`${USAGE_LINE} (the filter goes in --filter "EXPR")`);
  const { node, args } = target(values);
  if (values.filter !== undefined) {
    try {
      compileFilter(values.filter);
    } catch (err) {
      if (err instanceof FilterError) throw new UsageError(`podwire capture: ${err.message}`);
      throw err;
    }
  }
  const snaplen = values.snaplen === undefined ? undefined : /^\d{1,6}$/.test(values.snaplen) ? Number(values.snaplen) : NaN;
  if (snaplen !== undefined && !(snaplen >= 1 && snaplen <= 262_144)) throw new UsageError(`podwire capture: -s ${values.snaplen}: a snapshot length from 1 to 262144`);
  const bufferKiB = values['buffer-size'] === undefined ? undefined : /^\d{1,6}$/.test(values['buffer-size']) ? Number(values['buffer-size']) : NaN;
  if (bufferKiB !== undefined && !(bufferKiB >= 64 && bufferKiB <= 65_536)) throw new UsageError(`podwire capture: -B ${values['buffer-size']}: the node's buffer for this capture, in KiB, from 64 to 65536`);
  const toStdout = values.write === undefined || values.write === '-';
  if (toStdout && process.stdout.isTTY) throw new UsageError('podwire capture: pcapng is not for a terminal; give -w FILE, or pipe it: podwire capture ... -w - | tcpdump -r -');
  const fd = toStdout ? 1 : openSync(values.write!, 'w', 0o644);

  let stopping = false;
  let last: { records: number; dropped: number } = { records: 0, dropped: 0 };
  let interrupt: () => void = () => undefined;
  const interrupted = new Promise<'interrupted'>((resolve) => {
    interrupt = () => {
      stopping = true;
      resolve('interrupted');
    };
  });
  process.on('SIGINT', interrupt);
  process.on('SIGTERM', interrupt);
  process.on('SIGHUP', interrupt);
  let writing: Promise<void> = Promise.resolve();
  const onChunk = async (chunk: CaptureChunk, data?: Buffer): Promise<void> => {
    // After Ctrl-C nothing more is started: the output ends after the last whole chunk.
    if (stopping) return;
    writing = data !== undefined && data.length > 0 ? writeAll(fd, data) : Promise.resolve();
    await writing;
    last = { records: chunk.records, dropped: chunk.dropped };
  };
  const fullArgs: CaptureArgs = { ...args, ...(values.filter !== undefined ? { filter: values.filter } : {}), ...(snaplen !== undefined ? { snaplen } : {}), ...(bufferKiB !== undefined ? { bufferBytes: bufferKiB * 1024 } : {}) };
  let ending = '';
  try {
    const outcome = await Promise.race([streamFromNode(values, node, 'capture', fullArgs, onChunk), interrupted]);
    // A chunk being written when the signal came is finished: the file ends on a record boundary.
    await writing.catch(() => undefined);
    if (outcome !== 'interrupted') {
      last = { records: outcome.records, dropped: outcome.dropped };
      ending = ` (${outcome.reason})`;
    }
  } catch (err) {
    if (!(err instanceof ReaderGone)) throw err;
    ending = ' (the reader closed the pipe)';
  } finally {
    process.off('SIGINT', interrupt);
    process.off('SIGTERM', interrupt);
    process.off('SIGHUP', interrupt);
    if (!toStdout) closeSync(fd);
  }
  process.stderr.write(`${last.records} packets captured${ending}\n${last.dropped} packets dropped by the node (its capture buffer was full: the reader was slower than the traffic)\n`);
  return 0;
}
