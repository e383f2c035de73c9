import test from 'ava';
import { formatIpv4 } from '../../src/packet/addr.js';
import { computeEndpoints, formatEndpoints, podKey } from '../../src/cluster/endpoints.js';
import { cluster } from './helpers.js';

const YAML = `
apiVersion: v1
kind: Pod
metadata: {name: web-1, labels: {app: web}}
spec: {containers: [{name: c, image: nginx, ports: [{name: http, containerPort: 8080}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-2, labels: {app: web}}
spec: {hostname: w2, subdomain: web, containers: [{name: c, image: nginx, ports: [{name: http, containerPort: 9090}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: other, labels: {app: other}}
spec: {containers: [{name: c, image: nginx}]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{name: http, port: 80, targetPort: http}, {name: raw, port: 81, targetPort: 7000}]}
---
apiVersion: v1
kind: Service
metadata: {name: manual}
spec: {ports: [{port: 5432}]}
---
apiVersion: v1
kind: Endpoints
metadata: {name: manual}
subsets: [{addresses: [{ip: 192.0.2.10}], notReadyAddresses: [{ip: 192.0.2.11}], ports: [{port: 5432}]}]
---
apiVersion: v1
kind: Service
metadata: {name: ext}
spec: {type: ExternalName, externalName: example.com}
`;

test('selectors, named target ports resolved per pod, readiness, hand-written Endpoints', (t) => {
  const c = cluster(YAML);
  const ready = new Map([[podKey({ namespace: 'default', name: 'web-1' }), true], [podKey({ namespace: 'default', name: 'web-2' }), false]]);
  const eps = computeEndpoints(c, ready);
  const line = (name: string, port: number) => {
    const e = eps.find((x) => x.service.name === name && x.servicePort.port === port)!;
    return e.endpoints.map((x) => `${formatIpv4(x.ip)}:${x.port}${x.ready ? '' : ' (not ready)'}${x.hostname ? ` ${x.hostname}` : ''}`);
  };
  const ip = (name: string) => formatIpv4(c.pods.find((p) => p.name === name)!.ip);
  t.deepEqual(line('web', 80), [`${ip('web-1')}:8080`, `${ip('web-2')}:9090 (not ready) w2`]);
  t.deepEqual(line('web', 81), [`${ip('web-1')}:7000`, `${ip('web-2')}:7000 (not ready) w2`]);
  t.deepEqual(line('manual', 5432), ['192.0.2.10:5432', '192.0.2.11:5432 (not ready)']);
  t.is(eps.filter((e) => e.service.name === 'ext').length, 0, 'ExternalName has no endpoints');
  t.is(formatEndpoints(eps.find((e) => e.service.name === 'web')!.endpoints), `${ip('web-1')}:8080`);
  t.is(formatEndpoints([]), '<none>');
});
