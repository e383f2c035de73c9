/** `--port` and `--address` of the web view (`podwire ui`, `podwire up --ui`). */
import { isIPv4 } from 'node:net';
import { UsageError } from './args.js';
import { UI_HOST } from '../ui/server.js';

/** The page's default port: printed when the server starts, `--port` to choose another (0: any free one). */
export const DEFAULT_UI_PORT = 7450;

export const UI_OPTIONS = {
  port: { type: 'string' },
  address: { type: 'string' },
} as const;

export function parseUiOptions(command: string, values: { port?: string; address?: string }): { port: number; address: string } {
  const port = values.port === undefined ? DEFAULT_UI_PORT : /^\d{1,5}$/.test(values.port) ? Number(values.port) : NaN;
  if (!(port >= 0 && port <= 65535)) throw new UsageError(`podwire ${command}: --port ${values.port}: a TCP port from 0 (any free one) to 65535`);
  const address = values.address ?? UI_HOST;
  if (!isIPv4(address)) throw new UsageError(`podwire ${command}: --address ${address}: an IPv4 address of this machine to serve the page on (default ${UI_HOST}, loopback only)`);
  return { port, address };
}
