/**
 * The node's /metrics endpoint: Prometheus text on a loopback TCP port, as node-exporter,
 * CoreDNS and kube-proxy serve theirs. Loopback only: the machine's root namespace gets
 * no address, and a Prometheus on the same machine scrapes it there.
 *
 * Every request renders the registry afresh (prom-client's collect-on-scrape): nothing is
 * cached between scrapes, and nothing is computed between them.
 */
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

export const METRICS_HOST = '127.0.0.1';
export const METRICS_PATH = '/metrics';

/** The address a node's /metrics is read at, on its own machine. */
export function metricsUrl(port: number): string {
  return `http://${METRICS_HOST}:${port}${METRICS_PATH}`;
}

export interface MetricsServer {
  readonly port: number;
  /** `http://127.0.0.1:PORT/metrics` */
  readonly url: string;
  close(): Promise<void>;
}

/** Serves `registry` on 127.0.0.1:`port` (0: a port the kernel picks). */
export async function serveMetrics(registry: Registry, port: number, log: (line: string) => void): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== METRICS_PATH) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end(`podwire serves ${METRICS_PATH} only\n`);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('GET or HEAD\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(req.method === 'HEAD' ? undefined : text),
      (err: Error) => {
        log(`metrics: scrape failed: ${err.stack ?? err.message}`);
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`scrape failed: ${err.message}\n`);
      },
    );
  });
  // A scraper that holds a connection open must not keep the node from stopping.
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? new Error(`metrics port ${METRICS_HOST}:${port} is in use (choose another with --metrics-port, or 0 for any free one)`) : err),
    );
    server.listen(port, METRICS_HOST, () => resolve());
  });
  const address = server.address();
  const bound = typeof address === 'object' && address !== null ? address.port : port;
  return {
    port: bound,
    url: metricsUrl(bound),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
