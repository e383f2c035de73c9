/**
 * The built-in demo scenario: two nodes, an nginx Deployment behind a ClusterIP Service, and a
 * client pod to curl it from. As YAML text, so it goes through exactly the path user files do.
 */

import type { SourceFile } from './documents.js';

export const DEMO_PATH = 'demo.yaml';

export const DEMO_YAML = `# podwire demo: three nginx replicas behind a ClusterIP service, and a client pod.
apiVersion: podwire.dev/v1alpha1
kind: Cluster
spec:
  nodes: 2
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: deploy-nginx
spec:
  replicas: 3
  selector:
    matchLabels:
      app: webui
  template:
    metadata:
      labels:
        app: webui
    spec:
      containers:
        - name: nginx
          image: nginx
          ports:
            - containerPort: 80
---
apiVersion: v1
kind: Pod
metadata:
  name: client
spec:
  containers:
    - name: client
      image: busybox
      command: ["sleep", "3600"]
---
apiVersion: v1
kind: Service
metadata:
  name: clusterip-service
spec:
  type: ClusterIP
  clusterIP: 10.100.100.100
  selector:
    app: webui
  ports:
    - port: 80
      targetPort: 80
`;

export function demoFiles(): SourceFile[] {
  return [{ path: DEMO_PATH, text: DEMO_YAML }];
}
