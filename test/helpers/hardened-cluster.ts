/**
 * The cluster the hardening tests and the path fuzz attack: two nodes, a client and a
 * bystander beside attackers, victims under a default-deny ingress policy on both nodes,
 * and a UDP echo behind a ClusterIP (10.96.50.50:5353).
 */
import { yaml } from '../cluster/helpers.js';

export const HARDENED_YAML = yaml`
  apiVersion: podwire.dev/v1alpha1
  kind: Cluster
  metadata: {name: harden}
  spec: {nodes: 2}
  ---
  apiVersion: v1
  kind: Namespace
  metadata: {name: locked}
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: client, labels: {app: client}}
  spec: {nodeName: node-1, containers: [{name: c, image: busybox}]}
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: bystander, labels: {app: client}}
  spec: {nodeName: node-1, containers: [{name: c, image: busybox}]}
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: attacker, labels: {app: attacker}}
  spec: {nodeName: node-1, containers: [{name: c, image: busybox}]}
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: far-attacker, labels: {app: attacker}}
  spec: {nodeName: node-2, containers: [{name: c, image: busybox}]}
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: victim, namespace: locked, labels: {app: web}}
  spec: {nodeName: node-1, containers: [{name: c, image: nginx}]}
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: far-victim, namespace: locked, labels: {app: web}}
  spec: {nodeName: node-2, containers: [{name: c, image: nginx}]}
  ---
  apiVersion: v1
  kind: Pod
  metadata: {name: echo, labels: {app: echo}}
  spec: {nodeName: node-2, containers: [{name: c, image: nginx}]}
  ---
  apiVersion: v1
  kind: Service
  metadata: {name: echo}
  spec:
    clusterIP: 10.96.50.50
    selector: {app: echo}
    ports: [{name: dns, protocol: UDP, port: 5353, targetPort: 5353}]
  ---
  apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: deny-all, namespace: locked}
  spec: {podSelector: {}, policyTypes: [Ingress]}
`;
