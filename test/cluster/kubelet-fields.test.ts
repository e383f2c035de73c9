/**
 * The pod fields the kubelet reads (environment, volumes, users, /etc/hosts aliases,
 * restart policy) as the API server validates them: every bad input is one diagnostic at
 * its field, and what podwire cannot honour is a warning that says what happens instead.
 */
import test from 'ava';
import { load, POD_HEAD, yaml } from './helpers.js';

/** The errors (or, with `warnings`, the warnings) of a Pod `p` with this spec, as `path: reason`. */
function problems(spec: string, which: 'errors' | 'warnings' = 'errors'): string[] {
  const r = load(`${POD_HEAD}\n${spec}\n`);
  const list = which === 'errors' ? (r.ok ? [] : r.errors) : r.warnings;
  return list.map((d) => `${d.path}: ${d.reason}`);
}

/** A spec with one container `c` that has these extra fields (a flow map's inside). */
const container = (fields: string, podFields = '') => `spec: {${podFields}${podFields ? ', ' : ''}containers: [{name: c, image: i, ${fields}}]}`;

const ERROR_CASES: ReadonlyArray<readonly [string, string, readonly string[]]> = [
  // ---- env and envFrom
  ['value and valueFrom together', container('env: [{name: A, value: x, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]'), ['spec.containers[0].env[0].valueFrom: may not be specified when `value` is not empty']],
  ['valueFrom without a source', container('env: [{name: A, valueFrom: {}}]'), ['spec.containers[0].env[0].valueFrom: must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`']],
  [
    'valueFrom with two sources',
    container('env: [{name: A, valueFrom: {fieldRef: {fieldPath: metadata.name}, secretKeyRef: {name: s, key: k}}}]'),
    ['spec.containers[0].env[0].valueFrom: may not have more than one field specified at a time, got fieldRef, secretKeyRef'],
  ],
  [
    'a fieldPath the downward API does not give variables',
    container('env: [{name: A, valueFrom: {fieldRef: {fieldPath: metadata.labels}}}, {name: B, valueFrom: {fieldRef: {fieldPath: spec.hostname}}}]'),
    [
      "spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: must be one of metadata.name, metadata.namespace, metadata.uid, metadata.labels['<KEY>'], spec.nodeName, spec.serviceAccountName, status.podIP, status.podIPs, status.hostIP, status.hostIPs, got \"metadata.labels\"",
      "spec.containers[0].env[1].valueFrom.fieldRef.fieldPath: must be one of metadata.name, metadata.namespace, metadata.uid, metadata.labels['<KEY>'], spec.nodeName, spec.serviceAccountName, status.podIP, status.podIPs, status.hostIP, status.hostIPs, got \"spec.hostname\"",
    ],
  ],
  [
    'annotations are not modelled, a bad label key is refused, the apiVersion is v1',
    container(`env: [{name: A, valueFrom: {fieldRef: {fieldPath: "metadata.annotations['x']"}}}, {name: B, valueFrom: {fieldRef: {fieldPath: "metadata.labels['-x']"}}}, {name: C, valueFrom: {fieldRef: {apiVersion: v2, fieldPath: metadata.name}}}]`),
    [
      'spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: metadata.annotations is not modelled by podwire (it keeps no annotations): use a label or a value instead',
      "spec.containers[0].env[1].valueFrom.fieldRef.fieldPath: label key must be a qualified name (letters, digits, '-', '_' and '.', starting and ending with a letter or digit, optionally prefixed by a DNS subdomain and '/'), got \"-x\"",
      'spec.containers[0].env[2].valueFrom.fieldRef.apiVersion: must be "v1", the version the downward API serves pod fields in, got "v2"',
    ],
  ],
  [
    'key selectors need a name and a key of ConfigMap syntax',
    container('env: [{name: A, valueFrom: {configMapKeyRef: {key: k}}}, {name: B, valueFrom: {secretKeyRef: {name: s, key: "a/b"}}}, {name: C, valueFrom: {secretKeyRef: {name: s, key: k, optional: maybe}}}]'),
    [
      'spec.containers[0].env[0].valueFrom.configMapKeyRef.name: required',
      `spec.containers[0].env[1].valueFrom.secretKeyRef.key: must consist of letters, digits, '-', '_' or '.' (e.g. "key.name", "KEY_NAME", "key-name"), got "a/b"`,
      'spec.containers[0].env[2].valueFrom.secretKeyRef.optional: must be a boolean, got "maybe"',
    ],
  ],
  [
    'envFrom needs exactly one source and a prefix without =',
    container('envFrom: [{prefix: P_}, {configMapRef: {name: a}, secretRef: {name: b}}, {prefix: "A=", configMapRef: {name: a}}]'),
    [
      'spec.containers[0].envFrom[0]: must specify one of: `configMapRef` or `secretRef`',
      'spec.containers[0].envFrom[1]: may not have more than one field specified at a time: `configMapRef` or `secretRef`',
      `spec.containers[0].envFrom[2].prefix: must consist of printable ASCII characters other than '=', got "A="`,
    ],
  ],
  ['workingDir is absolute', container('workingDir: srv'), ['spec.containers[0].workingDir: must be an absolute path, got "srv"']],
  [
    'a restart policy belongs to the pod',
    container('restartPolicy: Always'),
    ['spec.containers[0].restartPolicy: is only allowed on init containers, which podwire does not run: set spec.restartPolicy for the pod'],
  ],

  // ---- volumes and mounts
  [
    'volume names are DNS labels, unique; one type each',
    'spec: {volumes: [{name: Data}, {name: a}, {name: a}, {name: b, emptyDir: {}, configMap: {name: x}}], containers: [{name: c, image: i}]}',
    [
      "spec.volumes[0].name: must be a DNS-1123 label (lowercase letters, digits and '-', starting and ending with a letter or digit), got \"Data\"",
      'spec.volumes[2].name: duplicate volume name "a"',
      'spec.volumes[3]: may not specify more than 1 volume type, got emptyDir, configMap',
    ],
  ],
  [
    'emptyDir medium and sizeLimit',
    'spec: {volumes: [{name: a, emptyDir: {medium: Disk}}, {name: b, emptyDir: {medium: HugePages-2Mi}}, {name: c, emptyDir: {sizeLimit: lots}}, {name: d, emptyDir: {sizeLimit: -1Gi}}], containers: [{name: c, image: i}]}',
    [
      'spec.volumes[0].emptyDir.medium: must be "" (the node\'s disk) or Memory, got "Disk"',
      'spec.volumes[1].emptyDir.medium: HugePages is not supported by podwire: use "" (the disk) or Memory (a tmpfs)',
      'spec.volumes[2].emptyDir.sizeLimit: must be a quantity such as 500Mi, 1Gi or 1000000, got "lots"',
      'spec.volumes[3].emptyDir.sizeLimit: must not be negative, got "-1Gi"',
    ],
  ],
  [
    'configMap and secret volumes: names, modes, item keys and paths',
    yaml`
      spec:
        volumes:
          - {name: a, configMap: {items: [{key: k, path: p}]}}
          - {name: b, secret: {secretName: s, defaultMode: 01000}}
          - {name: c, configMap: {name: m, items: [{key: k, path: /etc/p}, {key: k, path: a/../../p}, {key: k, path: ..data}, {key: "k/1", path: q, mode: -1}, {path: r}]}}
        containers: [{name: c, image: i}]
    `,
    [
      'spec.volumes[0].configMap.name: required',
      'spec.volumes[1].secret.defaultMode: must be a number between 0 and 0777 (octal), both inclusive, got 512',
      'spec.volumes[2].configMap.items[0].path: must be a relative path, got "/etc/p"',
      `spec.volumes[2].configMap.items[1].path: must not contain '..', got "a/../../p"`,
      `spec.volumes[2].configMap.items[2].path: must not start with '..', got "..data"`,
      `spec.volumes[2].configMap.items[3].key: must consist of letters, digits, '-', '_' or '.' (e.g. "key.name", "KEY_NAME", "key-name"), got "k/1"`,
      'spec.volumes[2].configMap.items[3].mode: must be a number between 0 and 0777 (octal), both inclusive, got -1',
      'spec.volumes[2].configMap.items[4].key: required',
    ],
  ],
  [
    'mounts: a declared volume, an absolute unique path, a relative subPath; subPathExpr is refused',
    yaml`
      spec:
        volumes: [{name: data}, {name: host, hostPath: {path: /}}]
        containers:
          - name: c
            image: i
            volumeMounts:
              - {name: nope, mountPath: /a}
              - {name: host, mountPath: /b}
              - {name: data, mountPath: c}
              - {name: data, mountPath: /d}
              - {name: data, mountPath: /d}
              - {name: data, mountPath: /e/../f}
              - {name: data, mountPath: /g, subPath: ../x}
              - {name: data, mountPath: /h, subPathExpr: $(POD_NAME)}
    `,
    [
      'spec.containers[0].volumeMounts[0].name: volume "nope" is not one of spec.volumes',
      'spec.containers[0].volumeMounts[1].name: volume "host" is a hostPath volume, which podwire does not support, so it cannot be mounted',
      'spec.containers[0].volumeMounts[2].mountPath: must be an absolute path, got "c"',
      'spec.containers[0].volumeMounts[4].mountPath: duplicate mountPath "/d"',
      `spec.containers[0].volumeMounts[5].mountPath: must not contain '..', got "/e/../f"`,
      `spec.containers[0].volumeMounts[6].subPath: must not contain '..', got "../x"`,
      'spec.containers[0].volumeMounts[7].subPathExpr: not supported by podwire: use subPath',
    ],
  ],

  // ---- security contexts
  [
    'user and group ids are 0 to 2^31-1',
    container('securityContext: {runAsUser: -1, runAsGroup: 2147483648}', 'securityContext: {runAsUser: 1.5, supplementalGroups: [1, x]}'),
    [
      'spec.securityContext.runAsUser: must be between 0 and 2147483647, inclusive, got 1.5',
      'spec.securityContext.supplementalGroups[1]: must be between 0 and 2147483647, inclusive, got "x"',
      'spec.containers[0].securityContext.runAsUser: must be between 0 and 2147483647, inclusive, got -1',
      'spec.containers[0].securityContext.runAsGroup: must be between 0 and 2147483647, inclusive, got 2147483648',
    ],
  ],
  [
    'capabilities are the kernel\'s, or ALL',
    container('securityContext: {capabilities: {add: [NET_RAW, CAP_FLY], drop: [all, 7]}}'),
    [
      'spec.containers[0].securityContext.capabilities.add[1]: unknown capability "CAP_FLY": not one the kernel has (CAP_CHOWN to CAP_CHECKPOINT_RESTORE, see capabilities(7)), nor ALL',
      'spec.containers[0].securityContext.capabilities.drop[1]: must be a string, got 7',
    ],
  ],
  [
    'privileged is refused, and no escalation with CAP_SYS_ADMIN',
    container('securityContext: {privileged: true, allowPrivilegeEscalation: false, capabilities: {add: [SYS_ADMIN]}}'),
    [
      "spec.containers[0].securityContext.privileged: privileged containers are not supported by podwire: it runs pods as processes on this machine and never gives one the host's full capabilities, devices and filesystems (add the capabilities the container needs instead)",
      'spec.containers[0].securityContext.allowPrivilegeEscalation: cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN',
    ],
  ],

  // ---- pod fields
  [
    'hostAliases: an IPv4 address and at least one DNS name',
    'spec: {hostAliases: [{ip: "fd00::1", hostnames: [a]}, {ip: 10.0.0.1, hostnames: []}, {ip: 10.0.0.2, hostnames: [Bad_Name]}, {hostnames: [x]}], containers: [{name: c, image: i}]}',
    [
      'spec.hostAliases[0].ip: must be an IPv4 address, got "fd00::1"',
      'spec.hostAliases[1].hostnames: must not be empty',
      "spec.hostAliases[2].hostnames[0]: must be a DNS-1123 subdomain (lowercase letters, digits, '-' and '.', each part starting and ending with a letter or digit), got \"Bad_Name\"",
      'spec.hostAliases[3].ip: required',
    ],
  ],
  [
    'restartPolicy, enableServiceLinks, serviceAccountName',
    'spec: {restartPolicy: Sometimes, enableServiceLinks: "no", serviceAccountName: Admin, containers: [{name: c, image: i}]}',
    [
      'spec.enableServiceLinks: must be a boolean, got "no"',
      'spec.restartPolicy: must be one of Always, OnFailure, Never, got "Sometimes"',
      "spec.serviceAccountName: must be a DNS-1123 subdomain (lowercase letters, digits, '-' and '.', each part starting and ending with a letter or digit), got \"Admin\"",
    ],
  ],
];

for (const [what, spec, expected] of ERROR_CASES) {
  test(`error: ${what}`, (t) => {
    t.deepEqual(problems(spec), [...expected]);
  });
}

test('errors carry the file, document, object and line', (t) => {
  const r = load(`${POD_HEAD}\nspec:\n  containers:\n    - name: c\n      image: i\n      securityContext: {privileged: true}\n`);
  if (r.ok) return t.fail();
  t.is(r.errors.length, 1);
  t.like(r.errors[0], { file: 't.yaml', document: 1, object: 'Pod p', line: 9, path: 'spec.containers[0].securityContext.privileged' });
});

test('a Deployment restarts its pods, never their containers: restartPolicy must be Always', (t) => {
  const deployment = (policy: string) => yaml`
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web}
    spec:
      selector: {matchLabels: {app: web}}
      template:
        metadata: {labels: {app: web}}
        spec: {${policy}containers: [{name: c, image: i}]}
  `;
  const r = load(deployment('restartPolicy: Never, '));
  t.false(r.ok);
  t.deepEqual(r.ok ? [] : r.errors.map((d) => `${d.path}: ${d.reason}`), ['spec.template.spec.restartPolicy: must be Always in a Deployment, got "Never"']);
  t.true(load(deployment('restartPolicy: Always, ')).ok);
  t.true(load(deployment('')).ok, 'the default is Always');
});

test('warnings: what podwire cannot honour, and what it does instead', (t) => {
  const spec = yaml`
    spec:
      securityContext: {fsGroup: 2000, seccompProfile: {type: RuntimeDefault}}
      volumes: [{name: data, persistentVolumeClaim: {claimName: pvc}}]
      containers:
        - name: c
          image: i
          env: [{name: CPU, valueFrom: {resourceFieldRef: {resource: limits.cpu}}}]
          securityContext: {seLinuxOptions: {level: "s0:c1"}}
  `;
  t.deepEqual(problems(spec), []);
  t.deepEqual(problems(spec, 'warnings'), [
    "spec.securityContext.fsGroup: not supported by podwire: volumes keep root's group and the containers do not get this group",
    'spec.securityContext.seccompProfile: not supported by podwire: ignored',
    'spec.volumes[0].persistentVolumeClaim: persistentVolumeClaim volumes are not supported by podwire (it mounts emptyDir, configMap and secret volumes): the volume is left out',
    'spec.containers[0].env[0].valueFrom.resourceFieldRef: not supported by podwire: the variable is left out',
    'spec.containers[0].securityContext.seLinuxOptions: not supported by podwire: ignored',
  ]);
  const r = load(`${POD_HEAD}\n${spec}\n`);
  if (!r.ok) return t.fail();
  t.deepEqual(r.cluster.pods[0].volumes, [], 'the volume is left out');
  t.deepEqual(r.cluster.pods[0].containers[0].env, [], 'and so is the variable');
});

test('defaults: a volume without a type is an emptyDir; the deprecated serviceAccount names the account; capabilities are kernel names, once each', (t) => {
  const r = load(`${POD_HEAD}\n${container('securityContext: {capabilities: {add: [net_raw, CAP_NET_RAW, ALL], drop: [All]}}', 'serviceAccount: old, volumes: [{name: v}]')}\n`);
  if (!r.ok) return t.fail(r.errors.map((d) => d.reason).join('\n'));
  const [pod] = r.cluster.pods;
  t.deepEqual(pod.volumes, [{ name: 'v', kind: 'emptyDir', medium: '' }]);
  t.is(pod.serviceAccountName, 'old');
  t.deepEqual(pod.containers[0].securityContext.capabilities, { add: ['CAP_NET_RAW', 'ALL'], drop: ['ALL'] });
});

test('an env value of $(VAR) is kept as written: it is expanded when the container starts', (t) => {
  const r = load(`${POD_HEAD}\n${container('env: [{name: A, value: "$(B)-$$(C)"}]')}\n`);
  if (!r.ok) return t.fail();
  t.deepEqual(r.cluster.pods[0].containers[0].env, [{ name: 'A', value: '$(B)-$$(C)' }]);
});
