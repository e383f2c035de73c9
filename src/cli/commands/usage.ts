/** The podwire command's usage text. */
import { DEFAULT_STATE_ROOT } from '../../node/names.js';

export const USAGE = `usage: podwire COMMAND [options]

  up     [-f FILE]... [--name NAME] [--detach] [--pcap DIR] [--seed N] [--metrics-port N] [--ui [--port N]]
         start a cluster from Kubernetes YAML (the built-in demo when no file is given);
         node i serves Prometheus /metrics on 127.0.0.1:N+i (default: any free port);
         --ui serves the web view while the cluster runs in the foreground
  down   [--name NAME]                    remove everything the cluster created
  status [--name NAME] [--json]           nodes (with their /metrics address) and pods
  exec   [--name NAME] [-n NAMESPACE] [-c CONTAINER] [--user UID[:GID]] POD -- CMD...
                                          run CMD in the pod, as the container's user
  outside [--name NAME] -- CMD...         run CMD in the outside world (the ext namespace:
                                          NodePort and LoadBalancer clients, egress targets)
  rules  [--name NAME] NODE [--format iptables|json] [--backend nft|legacy]
                                          the node's service rules as iptables-save prints them
  conntrack [--name NAME] NODE [-p tcp|udp|icmp] [-s IP] [-d IP] [--sport PORT] [--dport PORT] [-o extended] [-C | --json]
                                          the node's connections, as conntrack -L prints them
  trace  [--name NAME] NODE --from POD|outside:IP|node:NAME --to IP:PORT[/tcp|udp]
         [--sport N] [--src IP] [-n NAMESPACE] [--json]
                                          push a packet through the node's live tables
  observe [--name NAME] [--node NODE] [-f|--follow] [--last N] [--since DURATION|TIME]
         [--pod [NS/]POD] [--from-pod ...] [--to-pod ...] [-n NS] [--ip CIDR] [--port N]
         [--protocol tcp|udp|icmp|dns] [--verdict FORWARDED|DROPPED|TRANSLATED]
         [--type drop|policy-verdict|trace|trace-sock|l7] [--service NS/NAME] [--not]
         [-o compact|json|table|dict] [--print-node-name] [--print-policy-names]
                                          the nodes' flows, as hubble observe prints them
  dns    [--name NAME] NAME [TYPE]        ask the cluster DNS
  ui     [--name NAME] [--port PORT] [--address IP] [--store URL]
                                          the web view: the cluster map, live flows, the life of a
                                          packet, captures (http://127.0.0.1:7450/ by default)
  capture [--name NAME] (--pod [NS/]POD | --node NODE [--iface IFACE]) [-w FILE|-] [--filter EXPR]
         [-s SNAPLEN] [-B KiB]            stream pcapng while the cluster runs (-w - | tcpdump -r -);
                                          --filter: host, net, port, src/dst, tcp, udp, icmp, arp,
                                          ip, and/or/not, ( ) as in pcap-filter(7)
  scale  [--name NAME] [-n NAMESPACE] deployment/NAME --replicas N
  delete [--name NAME] [-n NAMESPACE] pod NAME
  restart-node [--name NAME] NODE [--pcap DIR] [--metrics-port N]
                                          start again a node whose process died, with its pods
  get    pods|services|endpoints|nodes|ingresses [-n NS|-A] [-o wide|json|yaml]
                                          list objects as kubectl get prints them

  several machines, the cluster in etcd (see STORE.md):
  apply  -f FILE... --name NAME --store etcd://HOST:PORT[,HOST:PORT...]
                                          create the cluster in the store, create or update objects
  join   --name NAME --store URL --node NODE [--underlay IP] [--underlay-port N] [--label k=v]...
         [--detach] [--pcap DIR] [--metrics-port N]
                                          run this machine's node agent for NODE
  leave  --name NAME --node NODE          the node agent on this machine leaves the cluster
  down   --name NAME --store URL          remove the cluster from the store (its agents tear down)
  status, scale, delete, get, ui take --store URL too; TLS: --cacert FILE [--cert FILE --key FILE]

  common: --name NAME (default podwire), --state-dir DIR (default ${DEFAULT_STATE_ROOT})
`;

/** `--help` on any command: the usage, exit 0. */
export function usage(): number {
  process.stdout.write(USAGE);
  return 0;
}
