/**
 * Leaving the podwire command. `process.exit` does not wait for stdout: on a pipe, Node
 * writes what the kernel takes at once (64 KiB) and queues the rest, which exit throws away.
 * So every command returns its code here, and the process exits once both streams have
 * handed everything to the kernel, however slowly the reader reads.
 */

/** Exit status of a command killed by SIGPIPE, as a shell reports it (128 + 13). */
export const READER_GONE_CODE = 141;

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
 * When the reader goes away (`podwire status | head -1`), writing fails with EPIPE: nothing
 * more can be delivered, so the command stops there instead of dying on an unhandled error.
 */
export function exitQuietlyWhenReaderGoes(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      process.exit(err.code === 'EPIPE' ? READER_GONE_CODE : 1);
    });
  }
}

/** Exits with `code` once stdout and stderr have drained. */
export async function exitWhenFlushed(code: number): Promise<never> {
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(code);
}
