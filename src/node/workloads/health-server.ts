/**
 * The node's service health server, kube-proxy's: runs inside the node's own namespace on
 * the pod network (beside the DNS relay), where the dataplane sends TCP for the node's
 * addresses on each health check node port. The agent sends the checks over the IPC
 * channel whenever services or endpoints change; a port is listened on while some check
 * names it. Any path, any method, gets kube-proxy's answer.
 *
 *   node health-server.js        (spawned with an IPC channel)
 */
import { createServer, type Server } from 'node:http';
import { healthCheckResponse, type HealthCheck } from '../../kube/health-check.js';

const listeners = new Map<number, { server: Server; check: HealthCheck }>();

function serve(port: number): Server {
  const server = createServer((req, res) => {
    const entry = listeners.get(port);
    if (entry === undefined) {
      res.destroy();
      return;
    }
    const answer = healthCheckResponse(entry.check);
    res.writeHead(answer.status, answer.headers);
    res.end(answer.body);
    req.resume();
  });
  server.on('error', (err) => process.stderr.write(`health server: port ${port}: ${err.message}\n`));
  server.listen(port, '0.0.0.0');
  return server;
}

function isCheck(value: unknown): value is HealthCheck {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return Number.isInteger(v.port) && (v.port as number) > 0 && (v.port as number) < 65536 && typeof v.namespace === 'string' && typeof v.name === 'string' && Number.isInteger(v.localEndpoints);
}

function apply(checks: readonly HealthCheck[]): void {
  const wanted = new Map(checks.map((c) => [c.port, c]));
  for (const [port, entry] of listeners) {
    if (wanted.has(port)) continue;
    entry.server.close();
    listeners.delete(port);
  }
  for (const [port, check] of wanted) {
    const entry = listeners.get(port);
    if (entry !== undefined) entry.check = check;
    else listeners.set(port, { server: serve(port), check });
  }
}

process.on('message', (message: unknown) => {
  if (!Array.isArray(message)) return;
  apply(message.filter(isCheck));
});
// The agent's end of the channel closing means the node is gone: so is its health server.
process.on('disconnect', () => process.exit(0));
