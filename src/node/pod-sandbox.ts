/**
 * From a pod's manifest to what its sandbox is made of: the files the kubelet writes for it
 * (/etc/hosts, resolv.conf, the hostname, its volumes) and, for each container start or
 * `podwire exec`, the launcher's command line and the process's environment. The
 * Kubernetes semantics are src/pod's; this file only puts them together for the launcher.
 */
import { formatIpv4 } from '../packet/addr.js';
import type { Cluster, Container, Node, Pod } from '../cluster/model.js';
import { kubernetesServiceIP } from '../cluster/ipam.js';
import { podHostname, renderEtcHosts } from '../pod/hosts.js';
import { containerEnvironment, expandCommand } from '../pod/env.js';
import { volumeContents } from '../pod/volumes.js';
import { containerSecurity } from '../pod/security.js';
import { containerCommand, volumeDirectory, type MountSpec, type PodFiles, type VolumeContent } from '../sandbox/launcher.js';
import type { ContainerPlan } from './pod-runtime.js';
import { chooseWorkload } from './workloads/choose.js';

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * The pod's kubelet-written files. A volume that cannot be mounted (a missing ConfigMap) is
 * left out, and its problem stops every container that mounts it (planContainer).
 */
export function podFiles(pod: Pod, cluster: Cluster, resolvConf: string): { files: PodFiles; volumeProblems: ReadonlyMap<string, string> } {
  const volumes = volumeContents(pod, cluster.configMaps, cluster.secrets);
  return {
    files: {
      hosts: renderEtcHosts(pod, cluster.settings.clusterDomain),
      resolvConf,
      hostname: podHostname(pod),
      volumes: new Map<string, VolumeContent>(volumes.volumes),
    },
    volumeProblems: volumes.problems,
  };
}

export interface ExecOverride {
  readonly argv: readonly string[];
  readonly user?: { readonly uid: number; readonly gid?: number };
}

export interface ContainerPlanInput {
  readonly pod: Pod;
  readonly container: Container;
  readonly cluster: Cluster;
  readonly node: Node;
  /** The pod's network namespace name, for the unsandboxed fallback (`ip netns exec`). */
  readonly netns: string;
  /** Undefined without podwire-sandbox. */
  readonly sandbox: { readonly binary: string; readonly initPid: number; readonly podDir: string; readonly hide: readonly string[] } | undefined;
  /** Volumes that could not be made, by name (podFiles). */
  readonly volumeProblems: ReadonlyMap<string, string>;
  readonly override?: ExecOverride;
  /** Where the node writes an ingress controller pod's configuration (ingress-configs.ts), on the host. */
  readonly ingressConfigDir?: string;
}

/** Where an ingress controller's proxy reads its configuration inside its sandbox: bound read-only from the node's directory. */
export const INGRESS_CONFIG_MOUNT = '/etc/podwire-ingress';

export function planContainer(input: ContainerPlanInput): ContainerPlan {
  const { pod, container, cluster, node } = input;
  const security = containerSecurity(pod, container);
  if ('problem' in security) return { problem: security.problem };
  for (const m of container.volumeMounts) {
    const problem = input.volumeProblems.get(m.name);
    // The kubelet's FailedMount: the container waits for its volume.
    if (problem !== undefined) return { problem: `MountVolume.SetUp failed for volume "${m.name}": ${problem}` };
  }
  const uid = input.override?.user?.uid ?? security.uid;
  const gid = input.override?.user?.gid ?? security.gid;

  const kubelet = containerEnvironment({
    pod,
    container,
    services: cluster.services.filter((s) => s.namespace === pod.namespace),
    configMaps: cluster.configMaps,
    secrets: cluster.secrets,
    nodeName: node.name,
    hostIP: formatIpv4(node.underlay),
    kubernetesServiceIP: kubernetesServiceIP(cluster.settings.serviceCIDR),
  });
  if (kubelet.problems.length > 0) return { problem: kubelet.problems.join('; ') };

  const chosen = chooseWorkload(container, pod.namespace);
  if ('problem' in chosen) return { problem: chosen.problem };
  const workload = chosen;
  // A container runtime's defaults, then the kubelet's variables over them, as containerd merges them.
  const env: Record<string, string> = { PATH: process.env.PATH ?? DEFAULT_PATH, HOSTNAME: podHostname(pod), HOME: uid === 0 ? '/root' : '/' };
  if (workload.builtin === 'http-echo') {
    // What podwire's stand-in server reports about itself (as the echoserver image reads them from the downward API).
    Object.assign(env, { POD_NAME: pod.name, POD_NAMESPACE: pod.namespace, POD_IP: formatIpv4(pod.ip), NODE_NAME: node.name });
  }
  for (const [name, value] of kubelet.env) env[name] = value;

  const configDir = input.sandbox === undefined ? input.ingressConfigDir : INGRESS_CONFIG_MOUNT;
  const builtinArgv = workload.builtin === 'ingress-proxy' && configDir !== undefined ? [...workload.argv, configDir] : workload.argv;
  const argv = input.override?.argv ?? (workload.builtin === undefined ? expandCommand(workload.argv, kubelet.env) : builtinArgv);
  const warnings = kubelet.warnings;
  if (input.sandbox === undefined) return { argv: ['ip', 'netns', 'exec', input.netns, ...argv], env, workload, warnings };

  const { podDir } = input.sandbox;
  const kinds = new Map(pod.volumes.map((v) => [v.name, v.kind]));
  const mounts: MountSpec[] = [
    ...workload.hostPaths.map((path) => ({ source: path, target: path, readOnly: true })),
    ...(workload.builtin === 'ingress-proxy' && input.ingressConfigDir !== undefined ? [{ source: input.ingressConfigDir, target: INGRESS_CONFIG_MOUNT, readOnly: true }] : []),
    ...container.volumeMounts.map((m) => ({
      source: m.subPath !== undefined && m.subPath !== '' ? `${volumeDirectory(podDir, m.name)}/${m.subPath}` : volumeDirectory(podDir, m.name),
      target: m.mountPath,
      // The kubelet mounts ConfigMap and Secret volumes read-only whatever the mount says.
      readOnly: m.readOnly || kinds.get(m.name) !== 'emptyDir',
    })),
  ];
  const command = containerCommand(
    {
      initPid: input.sandbox.initPid,
      podDir,
      mounts,
      hide: input.sandbox.hide,
      uid,
      gid,
      supplementalGroups: security.supplementalGroups,
      capabilities: security.capabilities.map((c) => c.number),
      noNewPrivileges: security.noNewPrivileges,
      readOnlyRootFilesystem: security.readOnlyRootFilesystem,
      ...(container.workingDir !== undefined ? { workingDir: container.workingDir } : {}),
    },
    argv,
    input.sandbox.binary,
  );
  return { argv: command, env, workload, warnings };
}
