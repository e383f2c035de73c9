/**
 * Ingresses and IngressClasses (networking.k8s.io/v1), validated as the API server's
 * ValidateIngress and ValidateIngressClass do for the fields podwire routes by: hosts (a DNS
 * name or `*.` and one, never an IP address), paths and their pathType, service backends by
 * port number or name, TLS entries, the class field and its legacy annotation.
 */

import { parseIpv4 } from '../packet/addr.js';
import { checked, decodeMetadata, decodePortNumber, required, type ObjectMeta } from './decode-common.js';
import type { Annotations, IngressPath, IngressPathType, IngressRule, IngressServiceBackend, IngressTLS } from './model.js';
import { checkDns1035Label, checkDnsSubdomain, checkLabelKey, checkPortName } from './names.js';
import type { Field, FieldMap } from './yaml-reader.js';

export const INGRESS_CLASS_ANNOTATION = 'kubernetes.io/ingress.class';
export const DEFAULT_CLASS_ANNOTATION = 'ingressclass.kubernetes.io/is-default-class';
const PATH_TYPES: readonly IngressPathType[] = ['Exact', 'Prefix', 'ImplementationSpecific'];
/** What ValidateIngress refuses in an Exact or Prefix path (a normalising proxy would read them differently). */
const INVALID_PATH_SEQUENCES = ['//', '/./', '/../', '%2f', '%2F'];
const INVALID_PATH_SUFFIXES = ['/..', '/.'];
/** IngressClass.spec.controller's limit. */
const CONTROLLER_MAX = 250;

export interface IngressDecl {
  readonly kind: 'Ingress';
  readonly meta: ObjectMeta;
  readonly annotations: Annotations;
  readonly ingressClassName?: string;
  readonly defaultBackend?: IngressServiceBackend;
  readonly rules: readonly IngressRule[];
  readonly tls: readonly IngressTLS[];
}

export interface IngressClassDecl {
  readonly kind: 'IngressClass';
  readonly meta: ObjectMeta;
  readonly annotations: Annotations;
  readonly controller: string;
  readonly isDefault: boolean;
}

export function decodeIngress(root: FieldMap): IngressDecl | undefined {
  const meta = decodeMetadata(root, true, checkDnsSubdomain);
  const annotations = decodeAnnotations(root);
  const spec = root.get('spec').mapOrEmpty();
  if (spec === undefined) return undefined;

  const classField = spec.get('ingressClassName');
  const ingressClassName = classField.present ? checked(classField, checkDnsSubdomain) : undefined;
  const legacyClass = annotations?.[INGRESS_CLASS_ANNOTATION];
  if (ingressClassName !== undefined && legacyClass !== undefined && legacyClass !== ingressClassName) {
    root.get('metadata').map()?.get('annotations').map()?.get(INGRESS_CLASS_ANNOTATION).invalid('must match `ingressClassName` when both are specified');
  }

  const backendField = spec.get('defaultBackend');
  const defaultBackend = backendField.present ? decodeBackend(backendField) : undefined;

  const rulesField = spec.get('rules');
  const rules: IngressRule[] = [];
  for (const item of rulesField.list() ?? []) {
    const rule = decodeRule(item);
    if (rule !== undefined) rules.push(rule);
  }
  if (!backendField.present && (rulesField.list() ?? []).length === 0) spec.field.error('either `defaultBackend` or `rules` must be specified');

  const tls: IngressTLS[] = [];
  for (const item of spec.get('tls').list() ?? []) {
    const entry = item.itemMap();
    if (entry === undefined) continue;
    const hosts: string[] = [];
    for (const hostField of entry.get('hosts').list() ?? []) {
      const host = checkedHost(hostField);
      if (host !== undefined) hosts.push(host);
    }
    const secretField = entry.get('secretName');
    const secretName = secretField.present ? checked(secretField, checkDnsSubdomain) : undefined;
    tls.push({ hosts, ...(secretName !== undefined ? { secretName } : {}) });
  }

  if (meta === undefined || annotations === undefined) return undefined;
  return {
    kind: 'Ingress',
    meta,
    annotations,
    ...(ingressClassName !== undefined ? { ingressClassName } : {}),
    ...(defaultBackend !== undefined ? { defaultBackend } : {}),
    rules,
    tls,
  };
}

export function decodeIngressClass(root: FieldMap): IngressClassDecl | undefined {
  const meta = decodeMetadata(root, false, checkDnsSubdomain);
  const annotations = decodeAnnotations(root);
  const spec = root.get('spec').mapOrEmpty();
  if (spec === undefined) return undefined;
  const controller = required(spec.get('controller'), checkController);
  if (meta === undefined || annotations === undefined || controller === undefined) return undefined;
  return { kind: 'IngressClass', meta, annotations, controller, isDefault: annotations[DEFAULT_CLASS_ANNOTATION] === 'true' };
}

/** `metadata.annotations`: label-key syntax for keys, any string for values. */
function decodeAnnotations(root: FieldMap): Annotations | undefined {
  const metadata = root.get('metadata').map();
  const field = metadata?.get('annotations');
  if (field === undefined || !field.present) return {};
  const map = field.map();
  if (map === undefined) return undefined;
  const out: Record<string, string> = {};
  let ok = true;
  for (const [key, value] of map.entries) {
    const badKey = checkLabelKey(key);
    if (badKey !== undefined) {
      value.error(`key ${badKey}`);
      ok = false;
      continue;
    }
    // An annotation is a string: `ssl-redirect: false` unquoted is a YAML boolean, which the API server refuses.
    const text = value.string();
    if (text === undefined) ok = false;
    else out[key] = text;
  }
  return ok ? out : undefined;
}

function decodeRule(item: Field): IngressRule | undefined {
  const rule = item.itemMap();
  if (rule === undefined) return undefined;
  const hostField = rule.get('host');
  const host = hostField.present ? checkedHost(hostField) : undefined;
  if (hostField.present && host === undefined) return undefined;
  const httpField = rule.get('http');
  const paths: IngressPath[] = [];
  let ok = true;
  if (httpField.present) {
    const http = httpField.map();
    if (http === undefined) return undefined;
    const pathsField = http.get('paths');
    const items = pathsField.list();
    if (items === undefined) {
      if (!pathsField.present) pathsField.require();
      return undefined;
    }
    if (items.length === 0) pathsField.error('must have at least one path');
    for (const pathItem of items) {
      const path = decodePath(pathItem);
      if (path === undefined) ok = false;
      else paths.push(path);
    }
  }
  return ok ? { ...(host !== undefined ? { host } : {}), paths } : undefined;
}

function decodePath(item: Field): IngressPath | undefined {
  const map = item.itemMap();
  if (map === undefined) return undefined;
  const typeField = map.get('pathType');
  const pathType = typeField.require() ? typeField.oneOf(PATH_TYPES) : undefined;
  const pathField = map.get('path');
  const path = pathField.present ? pathField.string() : '';
  const backendField = map.get('backend');
  const backend = backendField.require() ? decodeBackend(backendField) : undefined;
  if (pathType === undefined || path === undefined || backend === undefined) return undefined;
  const bad = checkPath(path, pathType);
  if (bad !== undefined) return pathField.invalid(bad);
  return { path, pathType, backend };
}

/** ValidateIngress's path rules: absolute, and for Exact and Prefix no sequence a proxy would normalise away. */
export function checkPath(path: string, pathType: IngressPathType): string | undefined {
  if (pathType === 'ImplementationSpecific') return path === '' || path.startsWith('/') ? undefined : 'must be an absolute path';
  if (!path.startsWith('/')) return 'must be an absolute path';
  for (const seq of INVALID_PATH_SEQUENCES) if (path.includes(seq)) return `must not contain '${seq}'`;
  for (const suffix of INVALID_PATH_SUFFIXES) if (path.endsWith(suffix)) return `cannot end with '${suffix}'`;
  return undefined;
}

function decodeBackend(field: Field): IngressServiceBackend | undefined {
  const map = field.map();
  if (map === undefined) return undefined;
  const serviceField = map.get('service');
  const resourceField = map.get('resource');
  if (serviceField.present && resourceField.present) return field.invalid('cannot set both service and resource backends');
  if (resourceField.present) return resourceField.invalid('a Service backend: podwire routes to Services only, not to resource backends');
  if (!serviceField.present) return field.invalid('one backend type must be specified (service)');
  const service = serviceField.map();
  if (service === undefined) return undefined;
  const name = required(service.get('name'), checkDns1035Label);
  const portField = service.get('port');
  const port = portField.map();
  if (port === undefined) {
    if (!portField.present) portField.error('port name or number is required');
    return undefined;
  }
  const numberField = port.get('number');
  const nameField = port.get('name');
  if (numberField.present && nameField.present) return portField.invalid('cannot set both port name & port number');
  if (!numberField.present && !nameField.present) return portField.invalid('port name or number is required');
  const portRef = numberField.present ? decodePortNumber(numberField) : checked(nameField, checkPortName);
  if (name === undefined || portRef === undefined) return undefined;
  return { name, port: portRef };
}

/** A rule's or TLS entry's host: a DNS-1123 subdomain, or `*.` and one; never an IP address. */
function checkedHost(field: Field): string | undefined {
  return checked(field, checkIngressHost);
}

export function checkIngressHost(host: string): string | undefined {
  if (parseIpv4(host) !== undefined) return 'must be a DNS name, not an IP address';
  if (host.includes('*')) {
    if (!host.startsWith('*.') || checkDnsSubdomain(host.slice(2)) !== undefined) {
      return `a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain (lowercase letters, digits, '-' and '.'), got ${JSON.stringify(host)}`;
    }
    return undefined;
  }
  return checkDnsSubdomain(host);
}

/** `example.com/controller`: a DNS subdomain, then a path; at most 250 characters. */
function checkController(value: string): string | undefined {
  if (value.length > CONTROLLER_MAX) return `must be at most ${CONTROLLER_MAX} characters, got ${value.length}`;
  const slash = value.indexOf('/');
  if (slash <= 0 || slash === value.length - 1 || checkDnsSubdomain(value.slice(0, slash)) !== undefined || !/^[A-Za-z0-9/\-._~%!$&'()*+,;=:]+$/.test(value.slice(slash + 1))) {
    return `must be a domain-prefixed path (such as "acme.io/foo"), got ${JSON.stringify(value)}`;
  }
  return undefined;
}
