import test from 'ava';
import { cluster, yaml } from '../cluster/helpers.js';
import { formatIpv4 } from '../../src/packet/addr.js';
import { podFqdn, podHostname, renderEtcHosts } from '../../src/pod/hosts.js';

const HEADER = `# Kubernetes-managed hosts file.
127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
fe00::0\tip6-mcastprefix
fe00::1\tip6-allnodes
fe00::2\tip6-allrouters
`;

function pod(spec: string, name = 'web') {
  const c = cluster(yaml`
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: shop}
spec:
${spec}
  containers: [{name: c, image: busybox}]
`);
  return c.pods[0];
}

test('the kubelet\'s file: localhost lines, then the pod IP with its hostname', (t) => {
  const p = pod('  nodeName: node-1');
  t.is(renderEtcHosts(p, 'cluster.local'), `${HEADER}${formatIpv4(p.ip)}\tweb\n`);
});

test('with a subdomain the FQDN comes first, as the kubelet writes it, and hostname -f reads it', (t) => {
  const p = pod('  hostname: web-0\n  subdomain: svc-a');
  t.is(podFqdn(p, 'example.org'), 'web-0.svc-a.shop.svc.example.org');
  t.true(renderEtcHosts(p, 'example.org').endsWith('\tweb-0.svc-a.shop.svc.example.org\tweb-0\n'));
});

test('hostAliases follow under their own heading, one line per alias, names tab-separated', (t) => {
  const p = pod('  hostAliases:\n    - {ip: 123.45.67.89, hostnames: [foo, bar, baz]}\n    - {ip: 10.0.0.1, hostnames: [one]}');
  t.true(
    renderEtcHosts(p, 'cluster.local').endsWith('\n\n# Entries added by HostAliases.\n123.45.67.89\tfoo\tbar\tbaz\n10.0.0.1\tone\n'),
    renderEtcHosts(p, 'cluster.local'),
  );
});

test('a pod name longer than a DNS label is cut to 63 and loses the dashes and dots the cut leaves', (t) => {
  const long = `${'a'.repeat(62)}-bcd`;
  t.is(podHostname(pod('  nodeName: node-1', long)), 'a'.repeat(62));
  t.is(podHostname(pod('  nodeName: node-1', 'short')), 'short');
});
