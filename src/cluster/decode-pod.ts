/**
 * Pods and Deployments: the pod spec podwire models (containers, placement, DNS, what the
 * kubelet sets up: /etc/hosts aliases, environment, volumes, users, restart policy) and the
 * Deployment wrapper around a pod template. Fields podwire does not model are ignored.
 */

import { parseIpv4 } from '../packet/addr.js';
import {
  checked,
  checkedStrings,
  claimUnique,
  decodeIpv4,
  decodeLabels,
  decodeLabelSelector,
  decodeMetadata,
  decodePortNumber,
  decodeProtocol,
  required,
  type ObjectMeta,
} from './decode-common.js';
import { decodeEnv, decodeEnvFrom } from './decode-env.js';
import { decodeContainerSecurityContext, decodePodSecurityContext } from './decode-security.js';
import { decodeVolumeMounts, decodeVolumes, type DecodedVolumes } from './decode-volumes.js';
import type { Container, ContainerPort, DnsOption, DnsPolicy, HostAlias, LabelSelector, Labels, PodDnsConfig, PodSpec, RestartPolicy } from './model.js';
import { checkDnsLabel, checkDnsSubdomain, checkPodName, checkPortName } from './names.js';
import { formatSelector, selectorMatches } from './selector.js';
import type { Field, FieldMap } from './yaml-reader.js';

const DNS_POLICIES: readonly DnsPolicy[] = ['ClusterFirst', 'ClusterFirstWithHostNet', 'Default', 'None'];
const RESTART_POLICIES: readonly RestartPolicy[] = ['Always', 'OnFailure', 'Never'];

/** Kubernetes' pod validation limits (they mirror glibc's resolver). */
export const MAX_DNS_NAMESERVERS = 3;
export const MAX_DNS_SEARCH_PATHS = 32;
export const MAX_DNS_SEARCH_CHARS = 2048;

/** A decoded pod spec plus the fields the scheduler may need to blame later. */
export interface PodSpecDecl {
  readonly spec: PodSpec;
  readonly nodeNameField: Field;
  readonly nodeSelectorField: Field;
  readonly restartPolicyField: Field;
}

export interface PodDecl {
  readonly kind: 'Pod';
  readonly meta: ObjectMeta;
  readonly pod: PodSpecDecl;
}

export interface DeploymentDecl {
  readonly kind: 'Deployment';
  readonly meta: ObjectMeta;
  readonly replicas: number;
  readonly replicasField: Field;
  readonly selector: LabelSelector;
  readonly templateLabels: Labels;
  readonly template: PodSpecDecl;
}

export function decodePod(root: FieldMap): PodDecl | undefined {
  const meta = decodeMetadata(root, true, checkPodName);
  const pod = decodePodSpec(root.get('spec'));
  return meta && pod && { kind: 'Pod', meta, pod };
}

export function decodeDeployment(root: FieldMap): DeploymentDecl | undefined {
  const meta = decodeMetadata(root, true, checkDnsSubdomain);
  const spec = root.get('spec').mapOrEmpty();
  if (spec === undefined) return undefined;
  const replicasField = spec.get('replicas');
  const replicas = replicasField.present ? replicasField.integer('must be a non-negative integer', 0) : 1;

  const selectorField = spec.get('selector');
  const selector = selectorField.require() ? decodeLabelSelector(selectorField) : undefined;
  if (selector !== undefined && Object.keys(selector.matchLabels).length === 0 && selector.matchExpressions.length === 0) {
    selectorField.error('must not be empty: a Deployment must say which pods it owns');
  }

  const templateField = spec.get('template');
  const template = templateField.require() ? templateField.map() : undefined;
  if (template === undefined) return undefined;
  const labelsField = template.get('metadata').mapOrEmpty()?.get('labels');
  const templateLabels = labelsField === undefined ? {} : decodeLabels(labelsField);
  if (labelsField !== undefined && selector !== undefined && !selectorMatches(selector, templateLabels)) {
    labelsField.error(`do not match spec.selector ${formatSelector(selector)}`);
  }
  const podSpec = decodePodSpec(template.get('spec'));
  // The API server's Deployment validation: its ReplicaSet restarts pods, never their containers' exits.
  if (podSpec !== undefined && podSpec.spec.restartPolicy !== 'Always') {
    podSpec.restartPolicyField.error(`must be Always in a Deployment, got ${JSON.stringify(podSpec.spec.restartPolicy)}`);
  }
  if (meta === undefined || replicas === undefined || selector === undefined || podSpec === undefined) return undefined;
  return { kind: 'Deployment', meta, replicas, replicasField, selector, templateLabels, template: podSpec };
}

export function decodePodSpec(field: Field): PodSpecDecl | undefined {
  const spec = field.mapOrEmpty();
  if (spec === undefined) return undefined;

  const nodeNameField = spec.get('nodeName');
  const nodeName = checked(nodeNameField, checkDnsSubdomain);
  const nodeSelectorField = spec.get('nodeSelector');
  const nodeSelector = decodeLabels(nodeSelectorField);
  const hostname = checked(spec.get('hostname'), checkDnsLabel);
  const subdomain = checked(spec.get('subdomain'), checkDnsLabel);
  const dnsPolicy = spec.get('dnsPolicy').oneOf(DNS_POLICIES) ?? 'ClusterFirst';
  const dnsConfig = decodeDnsConfig(spec.get('dnsConfig'));
  if (dnsPolicy === 'None') {
    const dnsField = spec.get('dnsConfig');
    if (!dnsField.present) dnsField.error('required when dnsPolicy is None');
    else if (dnsConfig !== undefined && dnsConfig.nameservers.length === 0) {
      dnsField.mapOrEmpty()?.get('nameservers').error('must have at least one nameserver when dnsPolicy is None');
    }
  }
  if (spec.get('hostNetwork').boolean() === true) {
    spec.get('hostNetwork').warn('not supported by podwire: the pod gets its own network namespace');
  }

  const hostAliases = decodeHostAliases(spec.get('hostAliases'));
  const enableServiceLinks = spec.get('enableServiceLinks').boolean() ?? true;
  const restartPolicy = spec.get('restartPolicy').oneOf(RESTART_POLICIES) ?? 'Always';
  const serviceAccountName = checked(spec.get('serviceAccountName'), checkDnsSubdomain) ?? checked(spec.get('serviceAccount'), checkDnsSubdomain) ?? 'default';
  const volumes = decodeVolumes(spec.get('volumes'));
  const securityContext = decodePodSecurityContext(spec.get('securityContext'));

  const containersField = spec.get('containers');
  const items = containersField.require() ? containersField.list() : undefined;
  if (items !== undefined && items.length === 0) containersField.error('must not be empty');
  const containers: Container[] = [];
  const names = new Set<string>();
  const portNames = new Set<string>();
  for (const item of items ?? []) {
    const c = decodeContainer(item, names, portNames, volumes);
    if (c !== undefined) containers.push(c);
  }
  if (items === undefined || containers.length !== items.length || securityContext === undefined) return undefined;

  const podSpec: PodSpec = {
    ...(nodeName !== undefined && { nodeName }),
    nodeSelector,
    ...(hostname !== undefined && { hostname }),
    ...(subdomain !== undefined && { subdomain }),
    dnsPolicy,
    ...(dnsConfig !== undefined && { dnsConfig }),
    containers,
    hostAliases,
    enableServiceLinks,
    restartPolicy,
    serviceAccountName,
    volumes: volumes.volumes,
    securityContext,
  };
  return { spec: podSpec, nodeNameField, nodeSelectorField, restartPolicyField: spec.get('restartPolicy') };
}

function decodeContainer(item: Field, names: Set<string>, portNames: Set<string>, volumes: DecodedVolumes): Container | undefined {
  const c = item.itemMap();
  if (c === undefined) return undefined;
  const nameField = c.get('name');
  const name = required(nameField, checkDnsLabel);
  if (name !== undefined) claimUnique(names, name, nameField, 'container name');
  const image = required(c.get('image'), (v) => (v.trim() === '' ? 'must not be empty' : undefined));
  const command = checkedStrings(c.get('command'));
  const args = checkedStrings(c.get('args'));

  const env = decodeEnv(c.get('env'));
  const envFrom = decodeEnvFrom(c.get('envFrom'));
  const workingDir = checked(c.get('workingDir'), (v) => (v.startsWith('/') ? undefined : `must be an absolute path, got ${JSON.stringify(v)}`));
  const volumeMounts = decodeVolumeMounts(c.get('volumeMounts'), volumes);
  const securityContext = decodeContainerSecurityContext(c.get('securityContext'));
  // restartPolicy on a container is for sidecar init containers only, which podwire does not run.
  if (c.has('restartPolicy')) c.get('restartPolicy').error('is only allowed on init containers, which podwire does not run: set spec.restartPolicy for the pod');

  const ports: ContainerPort[] = [];
  for (const p of c.get('ports').list() ?? []) {
    const m = p.itemMap();
    if (m === undefined) continue;
    const portField = m.get('containerPort');
    const containerPort = portField.require() ? decodePortNumber(portField) : undefined;
    const protocol = decodeProtocol(m.get('protocol'));
    const portNameField = m.get('name');
    // Port names must be unique across the whole pod: services refer to them by name.
    const portName = checked(portNameField, checkPortName);
    if (portName !== undefined) claimUnique(portNames, portName, portNameField, 'port name');
    if (containerPort !== undefined) ports.push({ ...(portName !== undefined && { name: portName }), containerPort, protocol });
  }

  const probeField = c.get('readinessProbe');
  const readinessProbe = probeField.map() !== undefined ? probeField.plain() : undefined;

  if (name === undefined || image === undefined || securityContext === undefined) return undefined;
  return {
    name,
    image,
    command,
    args,
    env,
    envFrom,
    ...(workingDir !== undefined && { workingDir }),
    ports,
    volumeMounts,
    securityContext,
    ...(readinessProbe !== undefined && { readinessProbe }),
  };
}

function decodeHostAliases(field: Field): HostAlias[] {
  const aliases: HostAlias[] = [];
  for (const item of field.list() ?? []) {
    const m = item.itemMap();
    if (m === undefined) continue;
    const ipField = m.get('ip');
    const ip = ipField.require() ? decodeIpv4(ipField) : undefined;
    const hostnamesField = m.get('hostnames');
    const hostnames = checkedStrings(hostnamesField, checkDnsSubdomain);
    const given = hostnamesField.list()?.length ?? 0;
    if (hostnamesField.require() && hostnamesField.list() !== undefined && given === 0) hostnamesField.error('must not be empty');
    if (ip !== undefined && given > 0 && hostnames.length === given) aliases.push({ ip, hostnames });
  }
  return aliases;
}

function decodeDnsConfig(field: Field): PodDnsConfig | undefined {
  const m = field.map();
  if (m === undefined) return undefined;

  const nameserversField = m.get('nameservers');
  const nameservers = checkedStrings(nameserversField, (v) => (parseIpv4(v) === undefined ? `must be an IPv4 address, got ${JSON.stringify(v)}` : undefined));
  if (nameservers.length > MAX_DNS_NAMESERVERS) {
    nameserversField.error(`must not have more than ${MAX_DNS_NAMESERVERS} nameservers, got ${nameservers.length}`);
  }

  const searchesField = m.get('searches');
  // A trailing dot (an absolute name) is allowed, and "." alone, as Kubernetes allows them.
  const searches = checkedStrings(searchesField, (v) => (v === '.' ? undefined : checkDnsSubdomain(v.endsWith('.') ? v.slice(0, -1) : v)));
  if (searches.length > MAX_DNS_SEARCH_PATHS) {
    searchesField.error(`must not have more than ${MAX_DNS_SEARCH_PATHS} search paths, got ${searches.length}`);
  }
  const chars = searches.join(' ').length;
  if (chars > MAX_DNS_SEARCH_CHARS) {
    searchesField.error(`must not have more than ${MAX_DNS_SEARCH_CHARS} characters (including spaces) in the search list, got ${chars}`);
  }

  const options: DnsOption[] = [];
  for (const o of m.get('options').list() ?? []) {
    const om = o.itemMap();
    if (om === undefined) continue;
    const name = required(om.get('name'), (v) => (v === '' ? 'must not be empty' : undefined));
    const value = om.get('value').string();
    if (name !== undefined) options.push({ name, ...(value !== undefined && { value }) });
  }
  return { nameservers, searches, options };
}
