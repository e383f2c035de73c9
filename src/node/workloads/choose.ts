/**
 * What runs for a container, there being no container runtime: an ingress controller's
 * image (ingress-nginx's, podwire's own) gets podwire's ingress proxy, its args read as the
 * controller's flags; otherwise its own command and args when it has them, otherwise a
 * built-in stand-in chosen by image: nginx, httpd and echoserver images get podwire's HTTP
 * echo server on each containerPort (80 when none is declared); any other image sleeps,
 * like a busybox pod kept alive.
 */
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Container } from '../../cluster/model.js';
import { controllerFlags, isControllerImage } from '../../ingress/controller.js';

const HTTP_IMAGES = /(^|\/)(nginx|httpd|echoserver|echo-server)(:|@|$)/;

export interface Workload {
  argv: string[];
  /** TCP ports that must listen before the container counts as ready. */
  readyPorts: number[];
  builtin: 'http-echo' | 'ingress-proxy' | 'sleep' | undefined;
  /**
   * Host directories the command needs that a pod's filesystem may not show (podwire's own
   * scripts, when the package lies under /tmp or /run, which the sandbox replaces): bound
   * read-only at the same path.
   */
  hostPaths: string[];
}

/**
 * `namespace` expands `$(POD_NAMESPACE)` in an ingress controller's flags. An ingress
 * controller's image runs podwire's ingress proxy whatever its command and args say: they
 * are ingress-nginx's flags, read by the proxy's plan (its ports, its class), not a program.
 */
export function chooseWorkload(container: Container, namespace: string): Workload | { problem: string } {
  const declared = container.ports.filter((p) => p.protocol === 'TCP').map((p) => p.containerPort);
  if (isControllerImage(container.image)) {
    const flags = controllerFlags(container, namespace);
    if ('problem' in flags) return { problem: `ingress controller: ${flags.problem}` };
    const script = fileURLToPath(new URL('./ingress-proxy.js', import.meta.url));
    const routing = fileURLToPath(new URL('../../ingress/', import.meta.url));
    const ports = [flags.httpPort, flags.httpsPort, flags.healthzPort];
    return { argv: [process.execPath, script, ...ports.map(String)], readyPorts: ports, builtin: 'ingress-proxy', hostPaths: [dirname(script), routing.replace(/\/$/, '')] };
  }
  if (container.command.length > 0 || container.args.length > 0) {
    // args without command override the image's CMD; our images have no ENTRYPOINT.
    return { argv: [...container.command, ...container.args], readyPorts: declared, builtin: undefined, hostPaths: [] };
  }
  if (HTTP_IMAGES.test(container.image)) {
    const ports = declared.length > 0 ? declared : [80];
    const script = fileURLToPath(new URL('./http-echo.js', import.meta.url));
    return { argv: [process.execPath, script, ...ports.map(String)], readyPorts: ports, builtin: 'http-echo', hostPaths: [dirname(script)] };
  }
  return { argv: ['sleep', 'infinity'], readyPorts: declared, builtin: 'sleep', hostPaths: [] };
}
