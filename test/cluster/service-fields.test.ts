/**
 * Every Service and Endpoints field is honoured or warned about, with its file, document
 * and field: a manifest never loses a field in silence.
 */
import test from 'ava';
import { SERVICE_PORT_FIELDS, SERVICE_SPEC_FIELDS } from '../../src/cluster/service-fields.js';
import { cluster, errors, warnings } from './helpers.js';

const SERVICE = (spec: string) => `apiVersion: v1
kind: Service
metadata: {name: s}
spec: ${spec}
`;

test('fields podwire does not honour are warned about, each with its place; honoured values are not', (t) => {
  const text = `${SERVICE(`
  type: LoadBalancer
  loadBalancerClass: example.com/lb
  internalTrafficPolicy: Local
  trafficDistribution: PreferClose
  publishNotReadyAddresses: true
  ipFamilies: [IPv4, IPv6]
  ipFamilyPolicy: RequireDualStack
  clusterIPs: [10.96.0.50, fd00::50]
  clusterIP: 10.96.0.50
  sessionAfinity: ClientIP
  ports: [{port: 80, appProtocol: http, nodePorts: 30000}]`)}status: {loadBalancer: {ingress: [{ip: 192.0.2.99}]}}
`;
  t.deepEqual(warnings(text), [
    't.yaml: document 1 (Service s), line 6: spec.loadBalancerClass: not supported by podwire: its built-in load balancer serves every LoadBalancer service, whatever the class',
    't.yaml: document 1 (Service s), line 7: spec.internalTrafficPolicy: not supported by podwire: cluster traffic goes to every ready endpoint, as with Cluster',
    't.yaml: document 1 (Service s), line 8: spec.trafficDistribution: not supported by podwire: endpoints are chosen without topology',
    't.yaml: document 1 (Service s), line 9: spec.publishNotReadyAddresses: not supported by podwire: endpoints that are not ready stay out of the Service and its DNS records',
    't.yaml: document 1 (Service s), line 10: spec.ipFamilies: podwire is IPv4 single-stack: only IPv4 is served',
    't.yaml: document 1 (Service s), line 11: spec.ipFamilyPolicy: podwire is IPv4 single-stack: the service gets its IPv4 address only',
    't.yaml: document 1 (Service s), line 12: spec.clusterIPs: podwire is IPv4 single-stack: only clusterIP is used, the other addresses are ignored',
    't.yaml: document 1 (Service s), line 14: spec.sessionAfinity: not a field of a v1 ServiceSpec: ignored (kubectl would refuse it)',
    't.yaml: document 1 (Service s), line 15: spec.ports[0].nodePorts: not a field of a v1 ServicePort: ignored (kubectl would refuse it)',
    "t.yaml: document 1 (Service s), line 16: status: ignored: the status is the cluster's to write (podwire gives LoadBalancer addresses from its own pool)",
  ]);
  const quiet = SERVICE('{ipFamilies: [IPv4], ipFamilyPolicy: PreferDualStack, internalTrafficPolicy: Cluster, publishNotReadyAddresses: false, clusterIPs: [10.96.0.51], clusterIP: 10.96.0.51, ports: [{port: 80, appProtocol: http}]}');
  t.deepEqual(warnings(quiet), []);
});

test('Endpoints: unknown fields are warned about at every level', (t) => {
  const text = `apiVersion: v1
kind: Endpoints
metadata: {name: e}
subsets:
- addresses: [{ip: 10.244.1.2, zone: a}]
  ports: [{port: 80, appProtocol: http, weight: 2}]
  topology: {}
`;
  t.deepEqual(warnings(text), [
    't.yaml: document 1 (Endpoints e), line 5: subsets[0].addresses[0].zone: not a field of a v1 EndpointAddress: ignored (kubectl would refuse it)',
    't.yaml: document 1 (Endpoints e), line 6: subsets[0].ports[0].weight: not a field of a v1 EndpointPort: ignored (kubectl would refuse it)',
    't.yaml: document 1 (Endpoints e), line 7: subsets[0].topology: not a field of a v1 EndpointSubset: ignored (kubectl would refuse it)',
  ]);
});

test('allocateLoadBalancerNodePorts: false gives node ports only to the ports that ask', (t) => {
  const c = cluster(SERVICE('{type: LoadBalancer, allocateLoadBalancerNodePorts: false, ports: [{name: a, port: 80}, {name: b, port: 81, nodePort: 30555}]}'));
  t.deepEqual(c.services[0].ports.map((p) => p.nodePort), [undefined, 30555]);
  t.is(c.services[0].allocateLoadBalancerNodePorts, false);
  t.is(cluster(SERVICE('{type: LoadBalancer, ports: [{port: 80}]}')).services[0].allocateLoadBalancerNodePorts, undefined, 'the default, true, is not recorded');
  t.deepEqual(errors(SERVICE('{type: NodePort, allocateLoadBalancerNodePorts: false, ports: [{port: 80}]}')), [
    "t.yaml: document 1 (Service s), line 4: spec.allocateLoadBalancerNodePorts: may only be used when type is 'LoadBalancer'",
  ]);
});

test('the table names every v1 ServiceSpec and ServicePort field', (t) => {
  t.deepEqual(Object.keys(SERVICE_SPEC_FIELDS).sort(), [
    'allocateLoadBalancerNodePorts', 'clusterIP', 'clusterIPs', 'externalIPs', 'externalName', 'externalTrafficPolicy', 'healthCheckNodePort',
    'internalTrafficPolicy', 'ipFamilies', 'ipFamilyPolicy', 'loadBalancerClass', 'loadBalancerIP', 'loadBalancerSourceRanges', 'ports',
    'publishNotReadyAddresses', 'selector', 'sessionAffinity', 'sessionAffinityConfig', 'trafficDistribution', 'type',
  ]);
  t.deepEqual(Object.keys(SERVICE_PORT_FIELDS).sort(), ['appProtocol', 'name', 'nodePort', 'port', 'protocol', 'targetPort']);
});
