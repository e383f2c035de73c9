/**
 * Leaving the podwire command. `process.exit` does not wait for stdout: on a pipe, Node
 * writes what the kernel takes at once (64 KiB) and queues the rest, which exit throws away.
 * So every command returns its code here, and the process exits once both streams have
 * handed everything to the kernel, however slowly the reader reads.
 */

function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    const check = () => {
      if (stream.writableLength > 0 && !stream.destroyed) return;
      stream.off('drain', check);
      stream.off('close', check);
      resolve();
    };
    stream.on('drain', check);
    stream.on('close', check);
    check();
  });
}

/**
 * When the reader goes away (`podwire status | head -1`, or `podwire up | tee log` whose tee
 * died of the same Ctrl-C), writing fails with EPIPE. Output has nowhere to go, but the
 * command must still finish what it does (up must still tear down), so what it writes from
 * then on is dropped (Node ends the stream) instead of an unhandled error killing podwire.
 */
export function carryOnWhenReaderGoes(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
    });
  }
}

/** Exits with `code` once stdout and stderr have drained. */
export async function exitWhenFlushed(code: number): Promise<never> {
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(code);
}
