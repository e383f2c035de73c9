/**
 * One rule for names, checked at load time against every limit the name meets later: the
 * kernel's 255-character file names (network namespaces, logs) for pods, and one function
 * for cluster names, used by the Cluster document and by every command's --name.
 */
import test from 'ava';
import { basename } from 'node:path';
import { CLUSTER_NAME_MAX, checkClusterName, FILE_NAME_MAX, POD_NAME_MAX } from '../../src/cluster/names.js';
import { dnsRelayNamespaceName, podNamespaceName, StatePaths, tapName } from '../../src/node/names.js';
import { outsideNamespaceName, uplinkName } from '../../src/node/outside.js';
import { cluster, errors, yaml } from './helpers.js';

const pod = (name: string, namespace = 'default', container = 'c') => yaml`
  apiVersion: v1
  kind: Pod
  metadata: {name: ${name}, namespace: ${namespace}}
  spec: {containers: [{name: ${container}, image: busybox}]}
`;
const namespaceDoc = (name: string) => yaml`
  apiVersion: v1
  kind: Namespace
  metadata: {name: ${name}}
`;
const clusterDoc = (name: string) => yaml`
  apiVersion: podwire.dev/v1alpha1
  kind: Cluster
  metadata: {name: ${name}}
`;

test('a 253-character pod name (valid in Kubernetes) is refused at load time, naming the field and the limit', (t) => {
  const name = 'p'.repeat(253);
  t.deepEqual(errors(pod(name)), [
    `t.yaml: document 1 (Pod ${name}), line 3: metadata.name: must be at most ${POD_NAME_MAX} characters in podwire, got 253 (the pod's network namespace pw-<cluster>-<namespace>-<name> and its logs <namespace>_<name>_<container>.log must fit the kernel's 255-character file names)`,
  ]);
});

test('the longest names that load give kernel and file names within the limits', (t) => {
  const clusterName = 'c'.repeat(CLUSTER_NAME_MAX);
  const ns = 'n'.repeat(63);
  const container = 'k'.repeat(63);
  const podName = 'p'.repeat(POD_NAME_MAX);
  const c = cluster(`${clusterDoc(clusterName)}---\n${namespaceDoc(ns)}---\n${pod(podName, ns, container)}`);
  t.is(c.settings.name, clusterName);
  const netns = podNamespaceName(c.settings.name, ns, podName);
  const log = basename(StatePaths.of('/run/podwire', clusterName).containerLog(ns, podName, container));
  t.true(netns.length <= FILE_NAME_MAX, `${netns.length}`);
  t.true(log.length <= FILE_NAME_MAX, `${log.length}`);
  t.is(Math.max(netns.length, log.length), FILE_NAME_MAX, 'the limit is not lower than it needs to be');
  t.true(errors(`${clusterDoc(clusterName)}---\n${namespaceDoc(ns)}---\n${pod(`${podName}p`, ns, container)}`).length === 1);
});

test('the longest cluster and node names give namespace and file names within the limits, links stay within 15', (t) => {
  const clusterName = 'c'.repeat(CLUSTER_NAME_MAX);
  const nodeName = 'n'.repeat(63);
  const c = cluster(`apiVersion: podwire.dev/v1alpha1\nkind: Cluster\nmetadata: {name: ${clusterName}}\nspec: {nodes: [${nodeName}]}\n`);
  t.is(c.nodes[0].name, nodeName);
  const paths = StatePaths.of('/run/podwire', clusterName);
  for (const name of [dnsRelayNamespaceName(clusterName, nodeName), outsideNamespaceName(clusterName), basename(paths.nodeLog(nodeName)), basename(paths.nodeDnsSocket(nodeName))]) {
    t.true(name.length <= FILE_NAME_MAX, name);
  }
  for (const link of [tapName(254, 254, 0xffff), uplinkName(254)]) t.true(link.length <= 15, link);
  t.true(errors(`apiVersion: podwire.dev/v1alpha1\nkind: Cluster\nspec: {nodes: [${'n'.repeat(64)}]}\n`).length === 1, 'a node name is a DNS label');
});

test('a Cluster document name obeys the same rule as --name: 63 characters are refused at load time', (t) => {
  const name = 'c'.repeat(63);
  t.deepEqual(errors(clusterDoc(name)), [
    `t.yaml: document 1 (Cluster ${name}), line 3: metadata.name: must be at most ${CLUSTER_NAME_MAX} characters, got 63 (the cluster's name is part of every namespace and file name it has)`,
  ]);
  t.is(cluster(clusterDoc('c'.repeat(CLUSTER_NAME_MAX))).settings.name.length, CLUSTER_NAME_MAX);
});

test('cluster names: DNS labels of at most 32, nothing that walks out of a directory', (t) => {
  for (const good of ['podwire', 'a', 'a-1', '0x', 'c'.repeat(32)]) t.is(checkClusterName(good), undefined, good);
  for (const bad of ['', '..', '../../etc', 'a/b', '.', 'A', '-a', 'a-', 'a.b', 'a_b', 'c'.repeat(33), ' a']) t.not(checkClusterName(bad), undefined, bad);
});
