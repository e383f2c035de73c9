/**
 * kube-proxy's service health checks (pkg/proxy/healthcheck): every node serves, on each
 * healthCheckNodePort of a LoadBalancer service with externalTrafficPolicy Local, how many
 * of the service's ready endpoints it holds, so that an outside load balancer sends traffic
 * only to nodes that can serve it without leaving the node. Pure: which ports to serve, from
 * the plans, and the answer kube-proxy writes, byte for byte.
 */
import type { ServicePortEndpoints } from '../cluster/endpoints.js';
import { planServicePort } from './kube-proxy.js';

export interface HealthCheck {
  readonly port: number;
  readonly namespace: string;
  readonly name: string;
  /** This node's ready endpoints of the service. */
  readonly localEndpoints: number;
}

/**
 * One health check per service that has a health check node port, for `nodeName`: its
 * first port's plan counts the local endpoints (kube-proxy keeps one count per service,
 * each port's sync writing over the last; a service's ports share their pods). Only those
 * services are planned, so a node with thousands of services plans a handful here.
 */
export function healthChecks(endpoints: readonly ServicePortEndpoints[], nodeName: string): HealthCheck[] {
  const byService = new Map<string, HealthCheck>();
  for (const entry of endpoints) {
    const { service } = entry;
    if (service.healthCheckNodePort === undefined) continue;
    const plan = planServicePort(entry, nodeName);
    if (plan === undefined || byService.has(plan.serviceKey)) continue;
    byService.set(plan.serviceKey, { port: service.healthCheckNodePort, namespace: service.namespace, name: service.name, localEndpoints: plan.localEndpoints.length });
  }
  return [...byService.values()];
}

export interface HealthCheckResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/**
 * What kube-proxy answers any request on the port with: 200 when this node has endpoints,
 * 503 when it has none, and the same JSON (tab-indented, no final newline) either way.
 */
export function healthCheckResponse(check: Pick<HealthCheck, 'namespace' | 'name' | 'localEndpoints'>, proxyHealthy = true): HealthCheckResponse {
  const body = [
    '{',
    '\t"service": {',
    `\t\t"namespace": ${JSON.stringify(check.namespace)},`,
    `\t\t"name": ${JSON.stringify(check.name)}`,
    '\t},',
    `\t"localEndpoints": ${check.localEndpoints},`,
    `\t"serviceProxyHealthy": ${proxyHealthy}`,
    '}',
  ].join('\n');
  return {
    status: check.localEndpoints !== 0 && proxyHealthy ? 200 : 503,
    headers: { 'Content-Type': 'application/json', 'X-Content-Type-Options': 'nosniff', 'X-Load-Balancing-Endpoint-Weight': String(check.localEndpoints) },
    body,
  };
}
