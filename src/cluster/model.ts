/**
 * The cluster model: what the Kubernetes YAML says, validated and resolved (pods expanded from
 * Deployments, scheduled, addressed; services given cluster IPs and node ports).
 *
 * Types only. Addresses follow `src/packet/addr.ts`: an IPv4 address is a uint32 and a MAC a
 * 48-bit integer, so the dataplane can key its tables with them directly; render them with
 * `formatIpv4` / `formatMac`. Everything is readonly: the model is built once by `loadCluster`
 * and then only read.
 */

import type { Cidr } from '../packet/addr.js';

/** Where an object was declared, for messages that point back at the user's YAML. */
export interface Origin {
  readonly file: string;
  /** 1-based index of the YAML document within the file. */
  readonly document: number;
  /** 1-based line of the document's first node. */
  readonly line: number;
}

export type Protocol = 'TCP' | 'UDP' | 'SCTP';

export type Labels = Readonly<Record<string, string>>;

export type SelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';

export interface LabelSelectorRequirement {
  readonly key: string;
  readonly operator: SelectorOperator;
  /** Non-empty for In / NotIn, empty for Exists / DoesNotExist. */
  readonly values: readonly string[];
}

/**
 * A metav1.LabelSelector. The empty selector (no labels, no expressions) selects everything; an
 * absent selector is modelled as `undefined` by the fields that allow it, and selects nothing.
 */
export interface LabelSelector {
  readonly matchLabels: Labels;
  readonly matchExpressions: readonly LabelSelectorRequirement[];
}

// ---------------------------------------------------------------------------------------------
// Pods

export interface ContainerPort {
  readonly name?: string;
  readonly containerPort: number;
  readonly protocol: Protocol;
}

/** The pod fields the downward API gives an environment variable (`fieldRef.fieldPath`). */
export type PodFieldPath =
  | 'metadata.name'
  | 'metadata.namespace'
  | 'metadata.uid'
  | 'metadata.labels'
  | 'spec.nodeName'
  | 'spec.serviceAccountName'
  | 'status.podIP'
  | 'status.podIPs'
  | 'status.hostIP'
  | 'status.hostIPs';

/** Where a variable's value comes from when the manifest does not write it out (`valueFrom`). */
export type EnvVarSource =
  | {
      readonly kind: 'fieldRef';
      readonly fieldPath: PodFieldPath;
      /** The label named by `metadata.labels['key']`; set exactly when fieldPath is metadata.labels. */
      readonly key?: string;
    }
  | {
      readonly kind: 'configMapKeyRef' | 'secretKeyRef';
      /** The ConfigMap or Secret, in the pod's namespace. */
      readonly name: string;
      readonly key: string;
      /** A missing object or key leaves the variable out instead of stopping the container. */
      readonly optional: boolean;
    };

export interface EnvVar {
  readonly name: string;
  /** As written: `$(VAR)` references are expanded when the container starts. "" with valueFrom. */
  readonly value: string;
  readonly valueFrom?: EnvVarSource;
}

/** `envFrom`: every key of a ConfigMap or Secret becomes a variable. */
export interface EnvFromSource {
  readonly kind: 'configMapRef' | 'secretRef';
  readonly name: string;
  readonly optional: boolean;
  /** Put before every key; "" for none. */
  readonly prefix: string;
}

export interface VolumeMount {
  /** A volume of the pod's `volumes`. */
  readonly name: string;
  /** Absolute, and unique within the container. */
  readonly mountPath: string;
  readonly readOnly: boolean;
  /** A relative path inside the volume, mounted instead of the volume's root. */
  readonly subPath?: string;
}

/** Capability names as the kernel spells them (`CAP_NET_RAW`), or `ALL`. */
export interface Capabilities {
  readonly add: readonly string[];
  readonly drop: readonly string[];
}

/** The user a process runs as; unset fields fall back (container to pod, pod to the image's root). */
export interface RunAsSettings {
  /** 0 to 2^31-1. */
  readonly runAsUser?: number;
  /** 0 to 2^31-1. */
  readonly runAsGroup?: number;
  readonly runAsNonRoot?: boolean;
}

/** A container's `securityContext`; its user fields override the pod's. */
export interface ContainerSecurityContext extends RunAsSettings {
  readonly capabilities: Capabilities;
  readonly readOnlyRootFilesystem: boolean;
  /** Unset is not false: no_new_privs is set only when this is false, as the kubelet does. */
  readonly allowPrivilegeEscalation?: boolean;
}

/** The pod's `securityContext`: the defaults of its containers, and groups for all of them. */
export interface PodSecurityContext extends RunAsSettings {
  readonly supplementalGroups: readonly number[];
}

export interface Container {
  readonly name: string;
  readonly image: string;
  readonly command: readonly string[];
  readonly args: readonly string[];
  readonly env: readonly EnvVar[];
  readonly envFrom: readonly EnvFromSource[];
  /** Absolute; unset: the runtime's default, "/". */
  readonly workingDir?: string;
  readonly ports: readonly ContainerPort[];
  readonly volumeMounts: readonly VolumeMount[];
  readonly securityContext: ContainerSecurityContext;
  /** Kept as the plain value from the YAML: the probe runner (a later issue) interprets it. */
  readonly readinessProbe?: unknown;
}

/** A line the kubelet adds to the pod's /etc/hosts. */
export interface HostAlias {
  readonly ip: number;
  /** At least one. */
  readonly hostnames: readonly string[];
}

export type RestartPolicy = 'Always' | 'OnFailure' | 'Never';

/** A ConfigMap or Secret key written into a volume as a file. */
export interface KeyToPath {
  readonly key: string;
  /** Relative, without '..' elements. */
  readonly path: string;
  /** Permission bits (0 to 0o777); unset: the volume's defaultMode. */
  readonly mode?: number;
}

/** What a configMap or secret volume projects. */
export interface ObjectVolumeSource {
  /** The ConfigMap's name, or the Secret's (`secretName`). */
  readonly objectName: string;
  /** Empty: every key, each as a file of its name. */
  readonly items: readonly KeyToPath[];
  /** Permission bits of files without a mode of their own; 0o644 (420) by default. */
  readonly defaultMode: number;
  /** A missing object or key gives an empty volume (or leaves the file out) instead of stopping the pod. */
  readonly optional: boolean;
}

export type Volume =
  | {
      readonly name: string;
      readonly kind: 'emptyDir';
      /** "" for the node's disk, Memory for a tmpfs. */
      readonly medium: '' | 'Memory';
      readonly sizeLimitBytes?: number;
    }
  | ({ readonly name: string; readonly kind: 'configMap' | 'secret' } & ObjectVolumeSource);

export type DnsPolicy = 'ClusterFirst' | 'ClusterFirstWithHostNet' | 'Default' | 'None';

export interface DnsOption {
  readonly name: string;
  readonly value?: string;
}

export interface PodDnsConfig {
  /** Dotted-quad text, as written into resolv.conf. */
  readonly nameservers: readonly string[];
  readonly searches: readonly string[];
  readonly options: readonly DnsOption[];
}

/** The parts of a pod spec podwire models; other fields are ignored. */
export interface PodSpec {
  readonly nodeName?: string;
  readonly nodeSelector: Labels;
  readonly hostname?: string;
  readonly subdomain?: string;
  readonly dnsPolicy: DnsPolicy;
  readonly dnsConfig?: PodDnsConfig;
  readonly containers: readonly Container[];
  readonly hostAliases: readonly HostAlias[];
  /** Whether the pod gets the service variables of its namespace (KUBERNETES_* it gets anyway); default true. */
  readonly enableServiceLinks: boolean;
  /** Default Always; a Deployment's pods are always Always. */
  readonly restartPolicy: RestartPolicy;
  /** Default "default", as the ServiceAccount admission sets it. */
  readonly serviceAccountName: string;
  /** emptyDir, configMap and secret volumes; other types are left out with a warning. */
  readonly volumes: readonly Volume[];
  readonly securityContext: PodSecurityContext;
}

export interface PodOwner {
  readonly kind: 'Deployment';
  readonly name: string;
  readonly podTemplateHash: string;
}

export interface Pod extends PodSpec {
  readonly namespace: string;
  readonly name: string;
  /** A version-4 UUID drawn from the load's random source. */
  readonly uid: string;
  readonly labels: Labels;
  /** Name of the node the scheduler placed the pod on. */
  readonly node: string;
  readonly ip: number;
  readonly mac: number;
  readonly owner?: PodOwner;
  readonly origin: Origin;
}

export interface Deployment {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Labels;
  readonly replicas: number;
  readonly selector: LabelSelector;
  readonly podTemplateHash: string;
  /** What every replica is made from: its labels (pod-template-hash included) and spec. */
  readonly template: { readonly labels: Labels; readonly spec: PodSpec };
  /** Names of the pods made from the template, in creation order. */
  readonly pods: readonly string[];
  readonly origin: Origin;
}

// ---------------------------------------------------------------------------------------------
// Services and endpoints

export type ServiceType = 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';

export interface ServicePort {
  /** Required (and unique) when the service has more than one port. */
  readonly name?: string;
  readonly protocol: Protocol;
  readonly port: number;
  /** A port number, or the name of a container port; defaults to `port`. */
  readonly targetPort: number | string;
  /** Set for NodePort and LoadBalancer services (allocated when the YAML leaves it out). */
  readonly nodePort?: number;
}

export interface Service {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Labels;
  readonly type: ServiceType;
  /** The allocated or requested virtual IP; `undefined` for headless and ExternalName services. */
  readonly clusterIP?: number;
  /** `clusterIP: None`. */
  readonly headless: boolean;
  readonly ports: readonly ServicePort[];
  /** `undefined` when the service has no selector (its Endpoints are managed by hand). */
  readonly selector?: Labels;
  readonly sessionAffinity: 'None' | 'ClientIP';
  /** Set (default 10800) when sessionAffinity is ClientIP. */
  readonly sessionAffinityTimeoutSeconds?: number;
  /** Set (default Cluster) for externally reachable services only: NodePort, LoadBalancer, or with externalIPs. */
  readonly externalTrafficPolicy?: 'Cluster' | 'Local';
  readonly loadBalancerIP?: number;
  /** The address a LoadBalancer service is reachable at: loadBalancerIP, or one from the pool. */
  readonly loadBalancerIngress?: number;
  /**
   * spec.loadBalancerSourceRanges (LoadBalancer only): the sources allowed to reach the
   * load-balancer address; empty allows every source.
   */
  readonly loadBalancerSourceRanges?: readonly Cidr[];
  /**
   * spec.healthCheckNodePort (LoadBalancer with externalTrafficPolicy Local; allocated from
   * the node port range when the YAML leaves it out): where every node answers whether it
   * has endpoints of the service.
   */
  readonly healthCheckNodePort?: number;
  /** spec.allocateLoadBalancerNodePorts: false (LoadBalancer only) when the ports got node ports only where they asked. */
  readonly allocateLoadBalancerNodePorts?: false;
  /** spec.externalIPs: addresses outside the cluster that the service answers at too. */
  readonly externalIPs?: readonly number[];
  readonly externalName?: string;
  readonly origin: Origin;
}

export interface ObjectReference {
  readonly kind?: string;
  readonly namespace?: string;
  readonly name?: string;
}

export interface EndpointAddress {
  readonly ip: number;
  readonly hostname?: string;
  readonly nodeName?: string;
  readonly targetRef?: ObjectReference;
}

export interface EndpointPort {
  readonly name?: string;
  readonly port: number;
  readonly protocol: Protocol;
}

export interface EndpointSubset {
  readonly addresses: readonly EndpointAddress[];
  readonly notReadyAddresses: readonly EndpointAddress[];
  readonly ports: readonly EndpointPort[];
}

/** An Endpoints object as declared in the YAML (those computed from selectors come later). */
export interface Endpoints {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Labels;
  readonly subsets: readonly EndpointSubset[];
  readonly origin: Origin;
}

// ---------------------------------------------------------------------------------------------
// Network policies

export interface IpBlock {
  /** Host bits are cleared, as Kubernetes does when it compares. */
  readonly cidr: Cidr;
  /** Each a strict subset of `cidr`. */
  readonly except: readonly Cidr[];
}

/** Either `ipBlock` alone, or at least one of the two selectors. */
export interface NetworkPolicyPeer {
  readonly podSelector?: LabelSelector;
  readonly namespaceSelector?: LabelSelector;
  readonly ipBlock?: IpBlock;
}

export interface NetworkPolicyPort {
  readonly protocol: Protocol;
  /** A port number or a named container port; `undefined` matches every port. */
  readonly port?: number | string;
  /** With a numeric `port`, the last port of the range (inclusive). */
  readonly endPort?: number;
}

/** An empty `from` matches every source; an empty `ports` every port. */
export interface NetworkPolicyIngressRule {
  readonly from: readonly NetworkPolicyPeer[];
  readonly ports: readonly NetworkPolicyPort[];
}

/** An empty `to` matches every destination; an empty `ports` every port. */
export interface NetworkPolicyEgressRule {
  readonly to: readonly NetworkPolicyPeer[];
  readonly ports: readonly NetworkPolicyPort[];
}

export type PolicyType = 'Ingress' | 'Egress';

export interface NetworkPolicy {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Labels;
  readonly podSelector: LabelSelector;
  /** Defaulted as Kubernetes does: Ingress, plus Egress when egress rules are present. */
  readonly policyTypes: readonly PolicyType[];
  readonly ingress: readonly NetworkPolicyIngressRule[];
  readonly egress: readonly NetworkPolicyEgressRule[];
  readonly origin: Origin;
}

// ---------------------------------------------------------------------------------------------
// ConfigMaps and Secrets

/** Connection tracking as a node running kube-proxy has it. */
export interface ConntrackSettings {
  /** Packet and byte counters per connection (the kernel's nf_conntrack_acct); default false. */
  readonly accounting: boolean;
  /** kube-proxy's conntrack.tcpEstablishedTimeout (default 86400 s, 24h). */
  readonly tcpEstablishedTimeoutSeconds: number;
  /** kube-proxy's conntrack.tcpCloseWaitTimeout (default 3600 s, 1h). */
  readonly tcpCloseWaitTimeoutSeconds: number;
  /** nf_conntrack_udp_timeout: UDP until it counts as a stream (default 30 s). */
  readonly udpTimeoutSeconds: number;
  /** nf_conntrack_udp_timeout_stream (default 120 s). */
  readonly udpStreamTimeoutSeconds: number;
}

/** Values keyed by key, as the API server holds them after decoding: bytes, not text. */
export type DataMap = Readonly<Record<string, Buffer>>;

export interface ConfigMap {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Labels;
  /** `data` (as UTF-8) and `binaryData` (decoded base64) together; no key is in both. */
  readonly data: DataMap;
  /** The keys that came from binaryData: the kubelet gives them to volumes only, never to variables. */
  readonly binaryKeys: readonly string[];
  readonly origin: Origin;
}

export interface Secret {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Labels;
  /** Opaque unless given (kubernetes.io/tls, ...). */
  readonly type: string;
  /** `data` (decoded base64) with `stringData` merged over it, as the API server merges it. */
  readonly data: DataMap;
  readonly origin: Origin;
}

// ---------------------------------------------------------------------------------------------
// Ingresses (networking.k8s.io/v1)

export type Annotations = Readonly<Record<string, string>>;

export type IngressPathType = 'Exact' | 'Prefix' | 'ImplementationSpecific';

/** `backend.service`: a Service of the Ingress's namespace, by port number or port name. */
export interface IngressServiceBackend {
  readonly name: string;
  readonly port: number | string;
}

export interface IngressPath {
  /** As written; "" only for ImplementationSpecific, which then matches every path. */
  readonly path: string;
  readonly pathType: IngressPathType;
  readonly backend: IngressServiceBackend;
}

export interface IngressRule {
  /** A DNS name, or `*.` and one; undefined: every host. */
  readonly host?: string;
  /** Empty when the rule has no `http` (it then routes nothing). */
  readonly paths: readonly IngressPath[];
}

export interface IngressTLS {
  /** Empty: the certificate is the catch-all server's. */
  readonly hosts: readonly string[];
  /** A kubernetes.io/tls Secret of the Ingress's namespace; undefined: the controller's default certificate. */
  readonly secretName?: string;
}

export interface Ingress {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Labels;
  /** The controller reads its options here (`nginx.ingress.kubernetes.io/...`). */
  readonly annotations: Annotations;
  readonly ingressClassName?: string;
  readonly defaultBackend?: IngressServiceBackend;
  readonly rules: readonly IngressRule[];
  readonly tls: readonly IngressTLS[];
  readonly origin: Origin;
}

/** Cluster-scoped: which controller serves Ingresses that name this class. */
export interface IngressClass {
  readonly name: string;
  readonly labels: Labels;
  /** A domain-prefixed path, such as `k8s.io/ingress-nginx`. */
  readonly controller: string;
  /** `ingressclass.kubernetes.io/is-default-class: "true"`: Ingresses without a class get this one. */
  readonly isDefault: boolean;
  readonly origin: Origin;
}

// ---------------------------------------------------------------------------------------------
// Cluster, nodes, namespaces

export interface Namespace {
  readonly name: string;
  /** Includes `kubernetes.io/metadata.name`, which Kubernetes sets on every namespace. */
  readonly labels: Labels;
  /** `undefined` for the namespaces every cluster has (default, kube-system). */
  readonly origin?: Origin;
}

export interface ClusterSettings {
  readonly name: string;
  /** Derived from the name (see `clusterIndex` in ipam.ts); picks the underlay addresses. */
  readonly clusterIndex: number;
  readonly podCIDR: Cidr;
  readonly serviceCIDR: Cidr;
  readonly clusterDomain: string;
  /** VXLAN network identifier of the overlay. */
  readonly vni: number;
  /** MTU of every pod's eth0. */
  readonly mtu: number;
  /**
   * The `kubernetes` service's address: the first address of the service CIDR, reserved
   * in IPAM. podwire has no API server and declares no Service for it; the kubelet
   * semantics (KUBERNETES_SERVICE_HOST, port 443 named https) read it from here.
   */
  readonly kubernetesIP: number;
  /** The cluster DNS service's address: the tenth address of the service CIDR. */
  readonly dnsIP: number;
  /** The outside network (the ext namespace): node uplinks, NodePort clients, egress targets. */
  readonly externalCIDR: Cidr;
  /** The outside world's own address on that network (the ext namespace's bridge). */
  readonly externalGateway: number;
  /** The pool LoadBalancer services draw their address from. */
  readonly loadBalancerCIDR: Cidr;
  /** Connections each node tracks at most. */
  readonly conntrackMax: number;
  /** Each node's connection tracking: kube-proxy's timeouts and the kernel's accounting (`spec.conntrack`). */
  readonly conntrack: ConntrackSettings;
  /**
   * `podwire up --seed N`: each node seeds its dataplane's random source from it (endpoint
   * choice, SNAT ports), so a seeded cluster picks the same endpoints every run. Absent:
   * the nodes draw from Math.random, as the kernel draws from get_random_u32.
   */
  readonly dataplaneSeed?: number;
  /** Upstream resolvers of the cluster DNS; empty: each node's host resolv.conf. */
  readonly dnsUpstreams: readonly string[];
  /** TTL of every cluster DNS record, and the SOA's minimum (default 30 s, as kubeadm's Corefile). */
  readonly dnsTTLSeconds: number;
  /**
   * Whether the overlay socket uses UDP segmentation offload (default true): each run of
   * equal-sized VXLAN datagrams to one peer leaves as one glued datagram (one skb), and
   * the receiving node splits it again. `tcpdump -i lo` then shows the glued datagrams,
   * as it shows TSO super-packets on a NIC; false sends every VXLAN packet on its own.
   * podwire's own pcapng (--pcap) shows single packets either way.
   */
  readonly overlayOffload: boolean;
  /**
   * How long a node may go without renewing its lease before it is NotReady and its pods'
   * endpoints leave every Service (default 20 s), as the node lifecycle controller's grace.
   */
  readonly nodeGracePeriodSeconds: number;
  /**
   * Several machines: the TTL of the etcd lease that holds each node's subnet (default
   * 20 s). The agent renews it every third of that; when it is gone, every other node
   * drops that subnet's route, neighbour and FDB entry.
   */
  readonly subnetLeaseTTLSeconds: number;
  /** Flow events each node keeps for `podwire observe` (its ring; default 4,096). */
  readonly flowBufferCapacity: number;
}

export interface Node {
  readonly name: string;
  /** 1-based position in the Cluster document; picks the node's pod /24 and underlay address. */
  readonly index: number;
  /** Includes kubernetes.io/hostname and kubernetes.io/os, as the kubelet sets them. */
  readonly labels: Labels;
  readonly podCIDR: Cidr;
  /** The first address of podCIDR: the node's bridge, every local pod's default route. */
  readonly gateway: number;
  readonly gatewayMac: number;
  /** Loopback address the node's VXLAN socket binds to. */
  readonly underlay: number;
  readonly vtepMac: number;
  /** The node's address on the outside network (its uplink), where NodePorts answer. */
  readonly externalIP: number;
  readonly externalMac: number;
}

export interface Cluster {
  readonly settings: ClusterSettings;
  readonly nodes: readonly Node[];
  readonly namespaces: readonly Namespace[];
  /** In declaration order, Deployment replicas at the Deployment's place. */
  readonly pods: readonly Pod[];
  readonly deployments: readonly Deployment[];
  readonly services: readonly Service[];
  readonly endpoints: readonly Endpoints[];
  readonly networkPolicies: readonly NetworkPolicy[];
  readonly configMaps: readonly ConfigMap[];
  readonly secrets: readonly Secret[];
  readonly ingresses: readonly Ingress[];
  readonly ingressClasses: readonly IngressClass[];
}
