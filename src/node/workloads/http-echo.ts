/**
 * The built-in HTTP server that stands in for nginx, httpd and echoserver images: on each
 * port it answers every request with who answered and who asked, in the layout of the
 * echoserver image, so a client can see which backend it reached and from which address.
 *
 *   node http-echo.js PORT... (pod identity from POD_NAME, POD_NAMESPACE, POD_IP, NODE_NAME)
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

export interface PodIdentity {
  podName: string;
  podNamespace: string;
  podIp: string;
  nodeName: string;
}

export function echoBody(pod: PodIdentity, req: IncomingMessage): string {
  const socket = req.socket;
  return [
    `Hostname: ${pod.podName}`,
    '',
    'Pod Information:',
    `\tnode name:\t${pod.nodeName}`,
    `\tpod name:\t${pod.podName}`,
    `\tpod namespace:\t${pod.podNamespace}`,
    `\tpod IP:\t${pod.podIp}`,
    '',
    'Request Information:',
    `\tclient_address=${socket.remoteAddress ?? ''}`,
    `\tclient_port=${socket.remotePort ?? ''}`,
    `\tmethod=${req.method ?? ''}`,
    `\treal path=${req.url ?? ''}`,
    `\trequest_version=${req.httpVersion}`,
    `\trequest_line=${req.method ?? ''} ${req.url ?? ''} HTTP/${req.httpVersion}`,
    `\tserver_port=${socket.localPort ?? ''}`,
    '',
    'Request Headers:',
    ...Object.entries(req.headers).map(([k, v]) => `\t${k}=${Array.isArray(v) ? v.join(', ') : (v ?? '')}`),
    '',
  ].join('\n');
}

function main(): void {
  const ports = process.argv.slice(2).map(Number);
  if (ports.length === 0 || ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) {
    process.stderr.write('usage: http-echo PORT...\n');
    process.exit(2);
  }
  const pod: PodIdentity = {
    podName: process.env.POD_NAME ?? '',
    podNamespace: process.env.POD_NAMESPACE ?? '',
    podIp: process.env.POD_IP ?? '',
    nodeName: process.env.NODE_NAME ?? '',
  };
  for (const port of ports) {
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const body = echoBody(pod, req);
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
    server.keepAliveTimeout = 5000;
    server.listen(port, '0.0.0.0');
  }
  const stop = () => process.exit(0);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (import.meta.url === `file://${process.argv[1]}`) main();
