/**
 * Child process for the signal test in writer.test.ts (not a test file itself): writes
 * frames without pause until it is signalled. Each frame starts with its sequence number;
 * pcapng frames carry "seq N" as a comment. Prints "ready" once 2000 frames are written,
 * and "closed N" (N = records in the file) when the signal handler has closed the writer.
 *
 * Usage: node signal-child.js FILE pcap|pcapng
 */
import { writeSync } from 'node:fs';
import { CaptureWriter, installCloseOnSignals } from '../../src/pcap/index.js';

const [file, format] = process.argv.slice(2);
if (file === undefined || (format !== 'pcap' && format !== 'pcapng')) {
  process.stderr.write('usage: signal-child FILE pcap|pcapng\n');
  process.exit(2);
}

// A small buffer and a short timer, so that flushes happen while frames keep coming.
const writer = new CaptureWriter({ path: file, format, interfaces: [{ name: 'pw-sig0' }], bufferBytes: 64 * 1024, flushIntervalMs: 20 });
installCloseOnSignals([
  {
    close: () => {
      writer.close();
      // Synchronous: the process is about to die of the re-raised signal.
      writeSync(1, `closed ${writer.stats.records}\n`);
    },
  },
]);

const frame = Buffer.alloc(1514);
let seq = 0;

function burst(): void {
  for (let i = 0; i < 50; i++) {
    frame.writeUInt32BE(seq, 0);
    writer.write(0, frame.subarray(0, 60 + (seq % 1400)), `seq ${seq}`);
    seq++;
  }
  if (seq === 2000) process.stdout.write('ready\n');
  // A timer, not a loop: signals are delivered between event-loop turns. (The 1 ms pause
  // keeps the file to a few MB, which the test then reads whole.)
  setTimeout(burst, 1);
}
burst();
