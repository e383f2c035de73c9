/**
 * Which containers are ingress controllers, what their flags say, and which Ingresses each
 * serves, as ingress-nginx decides it:
 *
 * - `spec.ingressClassName` names an IngressClass whose `spec.controller` is the controller's
 *   `--controller-class` (default `k8s.io/ingress-nginx`);
 * - else the legacy annotation `kubernetes.io/ingress.class` equals its `--ingress-class`
 *   (default `nginx`);
 * - else (no class at all) the default IngressClass (is-default-class "true") is the
 *   controller's, as the API server's DefaultIngressClass admission would have filled it in,
 *   or the controller runs with `--watch-ingress-without-class`.
 *
 * An Ingress that no controller serves is left alone: no routes, no address.
 */
import type { Cluster, Container, Ingress, IngressClass, Pod, Service } from '../cluster/model.js';
import { INGRESS_CLASS_ANNOTATION } from '../cluster/decode-ingress.js';
import { equalitySelector, selectorMatches } from '../cluster/selector.js';
import { formatIpv4 } from '../packet/addr.js';

/** ingress-nginx's image, or podwire's own: either runs podwire's ingress proxy. */
const CONTROLLER_IMAGES = /(^|\/)(ingress-nginx\/controller|podwire\/ingress-controller)(:|@|$)/;
export const DEFAULT_CONTROLLER_CLASS = 'k8s.io/ingress-nginx';
export const DEFAULT_INGRESS_CLASS = 'nginx';

export interface ControllerFlags {
  readonly controllerClass: string;
  readonly ingressClass: string;
  readonly watchWithoutClass: boolean;
  readonly httpPort: number;
  readonly httpsPort: number;
  readonly healthzPort: number;
  /** `namespace/name` of the Service whose address the Ingresses' status gets. */
  readonly publishService?: string;
  /** `namespace/name` of a kubernetes.io/tls Secret for hosts without one of their own. */
  readonly defaultSslCertificate?: string;
  /** `namespace/name` of the ConfigMap with the controller's global settings. */
  readonly configMap?: string;
}

export function isControllerImage(image: string): boolean {
  return CONTROLLER_IMAGES.test(image);
}

/**
 * The controller's flags from the container's command and args, as ingress-nginx's
 * /nginx-ingress-controller reads them (`--flag=value` or `--flag value`); unknown flags
 * are ignored, a bad port number is an error. `$(POD_NAMESPACE)` is replaced by the pod's
 * namespace, as the kubelet expands it in the manifests ingress-nginx publishes.
 */
export function controllerFlags(container: Container, podNamespace: string): ControllerFlags | { readonly problem: string } {
  const values = new Map<string, string>();
  const words = [...container.command, ...container.args];
  for (let i = 0; i < words.length; i++) {
    const m = /^--?([a-z-]+)(?:=(.*))?$/.exec(words[i]);
    if (m === null) continue;
    let value = m[2];
    if (value === undefined && i + 1 < words.length && !words[i + 1].startsWith('-')) value = words[++i];
    values.set(m[1], (value ?? 'true').replaceAll('$(POD_NAMESPACE)', podNamespace));
  }
  const port = (flag: string, fallback: number): number | string => {
    const text = values.get(flag);
    if (text === undefined) return fallback;
    const n = Number(text);
    return Number.isInteger(n) && n >= 1 && n <= 65535 ? n : `--${flag}=${text}: not a port number`;
  };
  const httpPort = port('http-port', 80);
  const httpsPort = port('https-port', 443);
  const healthzPort = port('healthz-port', 10254);
  for (const p of [httpPort, httpsPort, healthzPort]) if (typeof p === 'string') return { problem: p };
  const publishService = values.get('publish-service');
  const defaultSslCertificate = values.get('default-ssl-certificate');
  const configMap = values.get('configmap');
  return {
    controllerClass: values.get('controller-class') ?? DEFAULT_CONTROLLER_CLASS,
    ingressClass: values.get('ingress-class') ?? DEFAULT_INGRESS_CLASS,
    watchWithoutClass: values.get('watch-ingress-without-class') === 'true',
    httpPort: httpPort as number,
    httpsPort: httpsPort as number,
    healthzPort: healthzPort as number,
    ...(publishService !== undefined ? { publishService } : {}),
    ...(defaultSslCertificate !== undefined ? { defaultSslCertificate } : {}),
    ...(configMap !== undefined ? { configMap } : {}),
  };
}

/** Whether a controller with these flags serves the Ingress. */
export function serves(flags: ControllerFlags, ingress: Ingress, classes: readonly IngressClass[]): boolean {
  if (ingress.ingressClassName !== undefined) {
    return classes.some((c) => c.name === ingress.ingressClassName && c.controller === flags.controllerClass);
  }
  const legacy = ingress.annotations[INGRESS_CLASS_ANNOTATION];
  if (legacy !== undefined) return legacy === flags.ingressClass;
  const defaults = classes.filter((c) => c.isDefault);
  // Two default classes make the API server refuse class-less Ingresses: none is served then.
  if (defaults.length === 1) return defaults[0].controller === flags.controllerClass;
  return defaults.length === 0 && flags.watchWithoutClass;
}

export interface ControllerInstance {
  readonly namespace: string;
  /** The Deployment's name, or the Pod's for a bare pod. */
  readonly name: string;
  readonly flags: ControllerFlags;
  /** The pods that run it. */
  readonly pods: readonly string[];
}

/** Every ingress controller of the cluster: a Deployment (or a bare Pod) with a controller container. */
export function controllers(cluster: Cluster): ControllerInstance[] {
  const out: ControllerInstance[] = [];
  for (const d of cluster.deployments) {
    const container = d.template.spec.containers.find((c) => isControllerImage(c.image));
    const flags = container && controllerFlags(container, d.namespace);
    if (flags === undefined || 'problem' in flags) continue;
    out.push({ namespace: d.namespace, name: d.name, flags, pods: d.pods });
  }
  for (const p of cluster.pods) {
    if (p.owner !== undefined) continue;
    const container = p.containers.find((c) => isControllerImage(c.image));
    const flags = container && controllerFlags(container, p.namespace);
    if (flags === undefined || 'problem' in flags) continue;
    out.push({ namespace: p.namespace, name: p.name, flags, pods: [p.name] });
  }
  return out;
}

/**
 * The Ingress's status.loadBalancer.ingress addresses, as ingress-nginx publishes them: the
 * `--publish-service`'s LoadBalancer address (or, without one, the Service of the
 * controller's namespace that selects its pods), else the outside addresses of the nodes
 * its pods run on. Empty when no controller serves the Ingress.
 */
export function ingressAddresses(cluster: Cluster, ingress: Ingress): string[] {
  const out = new Set<string>();
  for (const controller of controllers(cluster)) {
    if (!serves(controller.flags, ingress, cluster.ingressClasses)) continue;
    for (const address of controllerAddresses(cluster, controller)) out.add(address);
  }
  return [...out];
}

function controllerAddresses(cluster: Cluster, controller: ControllerInstance): string[] {
  const pods = cluster.pods.filter((p) => p.namespace === controller.namespace && controller.pods.includes(p.name));
  const service = publishedService(cluster, controller, pods);
  if (service?.loadBalancerIngress !== undefined) return [formatIpv4(service.loadBalancerIngress)];
  const nodes = new Set(pods.map((p) => p.node));
  return cluster.nodes.filter((n) => nodes.has(n.name)).map((n) => formatIpv4(n.externalIP));
}

function publishedService(cluster: Cluster, controller: ControllerInstance, pods: readonly Pod[]): Service | undefined {
  const named = controller.flags.publishService;
  if (named !== undefined) return cluster.services.find((s) => `${s.namespace}/${s.name}` === named);
  return cluster.services.find((s) => {
    if (s.namespace !== controller.namespace || s.type !== 'LoadBalancer' || s.selector === undefined || Object.keys(s.selector).length === 0) return false;
    const selector = equalitySelector(s.selector);
    return pods.some((p) => selectorMatches(selector, p.labels));
  });
}
