/**
 * Golden text for the named cluster of service-fixtures.ts, seen from node-1, in both dialects.
 *
 * The iptables-save text was checked byte for byte against what iptables 1.8.9 (nf_tables and
 * legacy) prints after restoring these rules in a scratch namespace (iptables-roundtrip.test.ts
 * repeats that check wherever it can run). The kube-proxy text follows the format of kube-proxy's
 * own expectations (pkg/proxy/iptables/proxier_test.go, TestOverallIPTablesRules): argument
 * order, quoting, `%0.10f` probabilities, `--or-mark`/`--xor-mark`, chains declared first. By
 * hand: web's endpoints are sorted as strings (10.244.1.10 before 10.244.1.2), dns and idle have
 * no endpoints (filter REJECT, idle's NodePort too), edge has Local policy (KUBE-SVL with its one
 * local endpoint, the not-ready 10.244.1.5 absent) and ClientIP affinity (recent --rcheck in both
 * KUBE-SVC and KUBE-SVL, --set in KUBE-SEP), db (headless) and upstream (ExternalName) have none.
 */
import test from 'ava';
import { kubeProxyRules } from '../../src/kube/kube-proxy.js';
import {
  formatDoubleFixed,
  formatKubeProxyProbability,
  formatSavedProbability,
  renderIptablesSave,
  renderKubeProxyRestore,
  saveString,
} from '../../src/kube/iptables-save.js';
import { ruleSetToJson } from '../../src/kube/rules-json.js';
import { goldenInputs } from './service-fixtures.js';

export const GOLDEN_SAVE = `
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
:KUBE-SERVICES - [0:0]
-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS
-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES
-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A KUBE-EXTERNAL-SERVICES -p tcp -m comment --comment "default/idle has no endpoints" -m addrtype --dst-type LOCAL -m tcp --dport 30060 -j REJECT --reject-with icmp-port-unreachable
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A KUBE-NODEPORTS -p tcp -m comment --comment "default/edge:https health check node port" -m tcp --dport 30000 -j ACCEPT
-A KUBE-SERVICES -d 10.96.0.53/32 -p udp -m comment --comment "default/dns:dns has no endpoints" -m udp --dport 53 -j REJECT --reject-with icmp-port-unreachable
-A KUBE-SERVICES -d 10.96.0.60/32 -p tcp -m comment --comment "default/idle has no endpoints" -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-EXT-PFINMTQ5Y2TT4XZK - [0:0]
:KUBE-EXT-QCFLP2V2YBSUHVTW - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SEP-4EX2N4PG4ASNZOBF - [0:0]
:KUBE-SEP-FLPAER4S3JQ5B22T - [0:0]
:KUBE-SEP-GWQABTP5GBYXHJY5 - [0:0]
:KUBE-SEP-LDCGVPNOEDCNWYOQ - [0:0]
:KUBE-SEP-QMS4Y2WNLVHPV45O - [0:0]
:KUBE-SEP-UIQK3OSOSTRHRPBX - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-CDGGSHYLG3RE2FKL - [0:0]
:KUBE-SVC-PFINMTQ5Y2TT4XZK - [0:0]
:KUBE-SVC-QCFLP2V2YBSUHVTW - [0:0]
:KUBE-SVL-QCFLP2V2YBSUHVTW - [0:0]
:PODWIRE-POSTRTG - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A POSTROUTING -m comment --comment "podwire masq" -j PODWIRE-POSTRTG
-A KUBE-EXT-PFINMTQ5Y2TT4XZK -m comment --comment "masquerade traffic for default/shop external destinations" -j KUBE-MARK-MASQ
-A KUBE-EXT-PFINMTQ5Y2TT4XZK -j KUBE-SVC-PFINMTQ5Y2TT4XZK
-A KUBE-EXT-QCFLP2V2YBSUHVTW -s 10.244.0.0/16 -m comment --comment "pod traffic for default/edge:https external destinations" -j KUBE-SVC-QCFLP2V2YBSUHVTW
-A KUBE-EXT-QCFLP2V2YBSUHVTW -m comment --comment "masquerade LOCAL traffic for default/edge:https external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ
-A KUBE-EXT-QCFLP2V2YBSUHVTW -m comment --comment "route LOCAL traffic for default/edge:https external destinations" -m addrtype --src-type LOCAL -j KUBE-SVC-QCFLP2V2YBSUHVTW
-A KUBE-EXT-QCFLP2V2YBSUHVTW -j KUBE-SVL-QCFLP2V2YBSUHVTW
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-NODEPORTS -p tcp -m comment --comment "default/shop" -m tcp --dport 30080 -j KUBE-EXT-PFINMTQ5Y2TT4XZK
-A KUBE-NODEPORTS -p tcp -m comment --comment "default/edge:https" -m tcp --dport 30443 -j KUBE-EXT-QCFLP2V2YBSUHVTW
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-SEP-4EX2N4PG4ASNZOBF -s 10.244.2.2/32 -m comment --comment "default/web:http" -j KUBE-MARK-MASQ
-A KUBE-SEP-4EX2N4PG4ASNZOBF -p tcp -m comment --comment "default/web:http" -m tcp -j DNAT --to-destination 10.244.2.2:8080
-A KUBE-SEP-FLPAER4S3JQ5B22T -s 10.244.2.4/32 -m comment --comment "default/edge:https" -j KUBE-MARK-MASQ
-A KUBE-SEP-FLPAER4S3JQ5B22T -p tcp -m comment --comment "default/edge:https" -m recent --set --name KUBE-SEP-FLPAER4S3JQ5B22T --mask 255.255.255.255 --rsource -m tcp -j DNAT --to-destination 10.244.2.4:8443
-A KUBE-SEP-GWQABTP5GBYXHJY5 -s 10.244.1.10/32 -m comment --comment "default/web:http" -j KUBE-MARK-MASQ
-A KUBE-SEP-GWQABTP5GBYXHJY5 -p tcp -m comment --comment "default/web:http" -m tcp -j DNAT --to-destination 10.244.1.10:8080
-A KUBE-SEP-LDCGVPNOEDCNWYOQ -s 10.244.2.3/32 -m comment --comment "default/shop" -j KUBE-MARK-MASQ
-A KUBE-SEP-LDCGVPNOEDCNWYOQ -p tcp -m comment --comment "default/shop" -m tcp -j DNAT --to-destination 10.244.2.3:8080
-A KUBE-SEP-QMS4Y2WNLVHPV45O -s 10.244.1.4/32 -m comment --comment "default/edge:https" -j KUBE-MARK-MASQ
-A KUBE-SEP-QMS4Y2WNLVHPV45O -p tcp -m comment --comment "default/edge:https" -m recent --set --name KUBE-SEP-QMS4Y2WNLVHPV45O --mask 255.255.255.255 --rsource -m tcp -j DNAT --to-destination 10.244.1.4:8443
-A KUBE-SEP-UIQK3OSOSTRHRPBX -s 10.244.1.2/32 -m comment --comment "default/web:http" -j KUBE-MARK-MASQ
-A KUBE-SEP-UIQK3OSOSTRHRPBX -p tcp -m comment --comment "default/web:http" -m tcp -j DNAT --to-destination 10.244.1.2:8080
-A KUBE-SERVICES -d 10.96.0.20/32 -p tcp -m comment --comment "default/web:http cluster IP" -m tcp --dport 80 -j KUBE-SVC-CDGGSHYLG3RE2FKL
-A KUBE-SERVICES -d 10.96.0.30/32 -p tcp -m comment --comment "default/shop cluster IP" -m tcp --dport 8080 -j KUBE-SVC-PFINMTQ5Y2TT4XZK
-A KUBE-SERVICES -d 10.96.0.40/32 -p tcp -m comment --comment "default/edge:https cluster IP" -m tcp --dport 443 -j KUBE-SVC-QCFLP2V2YBSUHVTW
-A KUBE-SERVICES -d 192.0.2.100/32 -p tcp -m comment --comment "default/edge:https loadbalancer IP" -m tcp --dport 443 -j KUBE-EXT-QCFLP2V2YBSUHVTW
-A KUBE-SERVICES ! -d 127.0.0.0/8 -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-SVC-CDGGSHYLG3RE2FKL ! -s 10.244.0.0/16 -d 10.96.0.20/32 -p tcp -m comment --comment "default/web:http cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ
-A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment "default/web:http -> 10.244.1.10:8080" -m statistic --mode random --probability 0.33333333349 -j KUBE-SEP-GWQABTP5GBYXHJY5
-A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment "default/web:http -> 10.244.1.2:8080" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-UIQK3OSOSTRHRPBX
-A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment "default/web:http -> 10.244.2.2:8080" -j KUBE-SEP-4EX2N4PG4ASNZOBF
-A KUBE-SVC-PFINMTQ5Y2TT4XZK ! -s 10.244.0.0/16 -d 10.96.0.30/32 -p tcp -m comment --comment "default/shop cluster IP" -m tcp --dport 8080 -j KUBE-MARK-MASQ
-A KUBE-SVC-PFINMTQ5Y2TT4XZK -m comment --comment "default/shop -> 10.244.2.3:8080" -j KUBE-SEP-LDCGVPNOEDCNWYOQ
-A KUBE-SVC-QCFLP2V2YBSUHVTW ! -s 10.244.0.0/16 -d 10.96.0.40/32 -p tcp -m comment --comment "default/edge:https cluster IP" -m tcp --dport 443 -j KUBE-MARK-MASQ
-A KUBE-SVC-QCFLP2V2YBSUHVTW -m comment --comment "default/edge:https -> 10.244.1.4:8443" -m recent --rcheck --seconds 600 --reap --name KUBE-SEP-QMS4Y2WNLVHPV45O --mask 255.255.255.255 --rsource -j KUBE-SEP-QMS4Y2WNLVHPV45O
-A KUBE-SVC-QCFLP2V2YBSUHVTW -m comment --comment "default/edge:https -> 10.244.2.4:8443" -m recent --rcheck --seconds 600 --reap --name KUBE-SEP-FLPAER4S3JQ5B22T --mask 255.255.255.255 --rsource -j KUBE-SEP-FLPAER4S3JQ5B22T
-A KUBE-SVC-QCFLP2V2YBSUHVTW -m comment --comment "default/edge:https -> 10.244.1.4:8443" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-QMS4Y2WNLVHPV45O
-A KUBE-SVC-QCFLP2V2YBSUHVTW -m comment --comment "default/edge:https -> 10.244.2.4:8443" -j KUBE-SEP-FLPAER4S3JQ5B22T
-A KUBE-SVL-QCFLP2V2YBSUHVTW -m comment --comment "default/edge:https -> 10.244.1.4:8443" -m recent --rcheck --seconds 600 --reap --name KUBE-SEP-QMS4Y2WNLVHPV45O --mask 255.255.255.255 --rsource -j KUBE-SEP-QMS4Y2WNLVHPV45O
-A KUBE-SVL-QCFLP2V2YBSUHVTW -m comment --comment "default/edge:https -> 10.244.1.4:8443" -j KUBE-SEP-QMS4Y2WNLVHPV45O
-A PODWIRE-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "podwire masq" -j RETURN
-A PODWIRE-POSTRTG -s 10.244.0.0/16 -d 10.244.0.0/16 -m comment --comment "podwire masq" -j RETURN
-A PODWIRE-POSTRTG -s 10.244.0.0/16 -d 10.96.0.0/12 -m comment --comment "podwire masq" -j RETURN
-A PODWIRE-POSTRTG -s 10.244.0.0/16 ! -d 224.0.0.0/4 -m comment --comment "podwire masq" -j MASQUERADE --random-fully
COMMIT
`;

export const GOLDEN_KUBE_PROXY = `
*filter
:KUBE-SERVICES - [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
-A KUBE-NODEPORTS -m comment --comment "default/edge:https health check node port" -m tcp -p tcp --dport 30000 -j ACCEPT
-A KUBE-SERVICES -m comment --comment "default/dns:dns has no endpoints" -m udp -p udp -d 10.96.0.53 --dport 53 -j REJECT
-A KUBE-SERVICES -m comment --comment "default/idle has no endpoints" -m tcp -p tcp -d 10.96.0.60 --dport 80 -j REJECT
-A KUBE-EXTERNAL-SERVICES -m comment --comment "default/idle has no endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 30060 -j REJECT
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
*nat
:KUBE-SERVICES - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-SVC-CDGGSHYLG3RE2FKL - [0:0]
:KUBE-SEP-GWQABTP5GBYXHJY5 - [0:0]
:KUBE-SEP-UIQK3OSOSTRHRPBX - [0:0]
:KUBE-SEP-4EX2N4PG4ASNZOBF - [0:0]
:KUBE-EXT-PFINMTQ5Y2TT4XZK - [0:0]
:KUBE-SVC-PFINMTQ5Y2TT4XZK - [0:0]
:KUBE-SEP-LDCGVPNOEDCNWYOQ - [0:0]
:KUBE-EXT-QCFLP2V2YBSUHVTW - [0:0]
:KUBE-SVC-QCFLP2V2YBSUHVTW - [0:0]
:KUBE-SVL-QCFLP2V2YBSUHVTW - [0:0]
:KUBE-SEP-QMS4Y2WNLVHPV45O - [0:0]
:KUBE-SEP-FLPAER4S3JQ5B22T - [0:0]
:PODWIRE-POSTRTG - [0:0]
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-SERVICES -m comment --comment "default/web:http cluster IP" -m tcp -p tcp -d 10.96.0.20 --dport 80 -j KUBE-SVC-CDGGSHYLG3RE2FKL
-A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment "default/web:http cluster IP" -m tcp -p tcp -d 10.96.0.20 --dport 80 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ
-A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment "default/web:http -> 10.244.1.10:8080" -m statistic --mode random --probability 0.3333333333 -j KUBE-SEP-GWQABTP5GBYXHJY5
-A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment "default/web:http -> 10.244.1.2:8080" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-UIQK3OSOSTRHRPBX
-A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment "default/web:http -> 10.244.2.2:8080" -j KUBE-SEP-4EX2N4PG4ASNZOBF
-A KUBE-SEP-GWQABTP5GBYXHJY5 -m comment --comment default/web:http -s 10.244.1.10 -j KUBE-MARK-MASQ
-A KUBE-SEP-GWQABTP5GBYXHJY5 -m comment --comment default/web:http -m tcp -p tcp -j DNAT --to-destination 10.244.1.10:8080
-A KUBE-SEP-UIQK3OSOSTRHRPBX -m comment --comment default/web:http -s 10.244.1.2 -j KUBE-MARK-MASQ
-A KUBE-SEP-UIQK3OSOSTRHRPBX -m comment --comment default/web:http -m tcp -p tcp -j DNAT --to-destination 10.244.1.2:8080
-A KUBE-SEP-4EX2N4PG4ASNZOBF -m comment --comment default/web:http -s 10.244.2.2 -j KUBE-MARK-MASQ
-A KUBE-SEP-4EX2N4PG4ASNZOBF -m comment --comment default/web:http -m tcp -p tcp -j DNAT --to-destination 10.244.2.2:8080
-A KUBE-SERVICES -m comment --comment "default/shop cluster IP" -m tcp -p tcp -d 10.96.0.30 --dport 8080 -j KUBE-SVC-PFINMTQ5Y2TT4XZK
-A KUBE-NODEPORTS -m comment --comment default/shop -m tcp -p tcp --dport 30080 -j KUBE-EXT-PFINMTQ5Y2TT4XZK
-A KUBE-SVC-PFINMTQ5Y2TT4XZK -m comment --comment "default/shop cluster IP" -m tcp -p tcp -d 10.96.0.30 --dport 8080 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ
-A KUBE-EXT-PFINMTQ5Y2TT4XZK -m comment --comment "masquerade traffic for default/shop external destinations" -j KUBE-MARK-MASQ
-A KUBE-EXT-PFINMTQ5Y2TT4XZK -j KUBE-SVC-PFINMTQ5Y2TT4XZK
-A KUBE-SVC-PFINMTQ5Y2TT4XZK -m comment --comment "default/shop -> 10.244.2.3:8080" -j KUBE-SEP-LDCGVPNOEDCNWYOQ
-A KUBE-SEP-LDCGVPNOEDCNWYOQ -m comment --comment default/shop -s 10.244.2.3 -j KUBE-MARK-MASQ
-A KUBE-SEP-LDCGVPNOEDCNWYOQ -m comment --comment default/shop -m tcp -p tcp -j DNAT --to-destination 10.244.2.3:8080
-A KUBE-SERVICES -m comment --comment "default/edge:https cluster IP" -m tcp -p tcp -d 10.96.0.40 --dport 443 -j KUBE-SVC-QCFLP2V2YBSUHVTW
-A KUBE-SERVICES -m comment --comment "default/edge:https loadbalancer IP" -m tcp -p tcp -d 192.0.2.100 --dport 443 -j KUBE-EXT-QCFLP2V2YBSUHVTW
-A KUBE-NODEPORTS -m comment --comment default/edge:https -m tcp -p tcp --dport 30443 -j KUBE-EXT-QCFLP2V2YBSUHVTW
-A KUBE-SVC-QCFLP2V2YBSUHVTW -m comment --comment "default/edge:https cluster IP" -m tcp -p tcp -d 10.96.0.40 --dport 443 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ
-A KUBE-EXT-QCFLP2V2YBSUHVTW -m comment --comment "pod traffic for default/edge:https external destinations" -s 10.244.0.0/16 -j KUBE-SVC-QCFLP2V2YBSUHVTW
-A KUBE-EXT-QCFLP2V2YBSUHVTW -m comment --comment "masquerade LOCAL traffic for default/edge:https external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ
-A KUBE-EXT-QCFLP2V2YBSUHVTW -m comment --comment "route LOCAL traffic for default/edge:https external destinations" -m addrtype --src-type LOCAL -j KUBE-SVC-QCFLP2V2YBSUHVTW
-A KUBE-EXT-QCFLP2V2YBSUHVTW -j KUBE-SVL-QCFLP2V2YBSUHVTW
-A KUBE-SVC-QCFLP2V2YBSUHVTW -m comment --comment "default/edge:https -> 10.244.1.4:8443" -m recent --name KUBE-SEP-QMS4Y2WNLVHPV45O --rcheck --seconds 600 --reap -j KUBE-SEP-QMS4Y2WNLVHPV45O
-A KUBE-SVC-QCFLP2V2YBSUHVTW -m comment --comment "default/edge:https -> 10.244.2.4:8443" -m recent --name KUBE-SEP-FLPAER4S3JQ5B22T --rcheck --seconds 600 --reap -j KUBE-SEP-FLPAER4S3JQ5B22T
-A KUBE-SVC-QCFLP2V2YBSUHVTW -m comment --comment "default/edge:https -> 10.244.1.4:8443" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-QMS4Y2WNLVHPV45O
-A KUBE-SVC-QCFLP2V2YBSUHVTW -m comment --comment "default/edge:https -> 10.244.2.4:8443" -j KUBE-SEP-FLPAER4S3JQ5B22T
-A KUBE-SVL-QCFLP2V2YBSUHVTW -m comment --comment "default/edge:https -> 10.244.1.4:8443" -m recent --name KUBE-SEP-QMS4Y2WNLVHPV45O --rcheck --seconds 600 --reap -j KUBE-SEP-QMS4Y2WNLVHPV45O
-A KUBE-SVL-QCFLP2V2YBSUHVTW -m comment --comment "default/edge:https -> 10.244.1.4:8443" -j KUBE-SEP-QMS4Y2WNLVHPV45O
-A KUBE-SEP-QMS4Y2WNLVHPV45O -m comment --comment default/edge:https -s 10.244.1.4 -j KUBE-MARK-MASQ
-A KUBE-SEP-QMS4Y2WNLVHPV45O -m comment --comment default/edge:https -m recent --name KUBE-SEP-QMS4Y2WNLVHPV45O --set -m tcp -p tcp -j DNAT --to-destination 10.244.1.4:8443
-A KUBE-SEP-FLPAER4S3JQ5B22T -m comment --comment default/edge:https -s 10.244.2.4 -j KUBE-MARK-MASQ
-A KUBE-SEP-FLPAER4S3JQ5B22T -m comment --comment default/edge:https -m recent --name KUBE-SEP-FLPAER4S3JQ5B22T --set -m tcp -p tcp -j DNAT --to-destination 10.244.2.4:8443
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS
-A PODWIRE-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "podwire masq" -j RETURN
-A PODWIRE-POSTRTG -s 10.244.0.0/16 -d 10.244.0.0/16 -m comment --comment "podwire masq" -j RETURN
-A PODWIRE-POSTRTG -s 10.244.0.0/16 -d 10.96.0.0/12 -m comment --comment "podwire masq" -j RETURN
-A PODWIRE-POSTRTG -s 10.244.0.0/16 ! -d 224.0.0.0/4 -m comment --comment "podwire masq" -j MASQUERADE --random-fully
COMMIT
`;

/** Lines that differ, side by side: a readable failure for a long text. */
function diff(actual: string, expected: string): string {
  const a = actual.split('\n');
  const e = expected.split('\n');
  const out: string[] = [];
  for (let i = 0; i < Math.max(a.length, e.length); i++) if (a[i] !== e[i]) out.push(`line ${i + 1}:\n  got      ${a[i]}\n  expected ${e[i]}`);
  return out.slice(0, 5).join('\n');
}

test('iptables-save text of the named cluster', (t) => {
  const text = renderIptablesSave(kubeProxyRules(goldenInputs()));
  t.is(text, GOLDEN_SAVE.slice(1), diff(text, GOLDEN_SAVE.slice(1)));
});

test('kube-proxy restore text of the named cluster', (t) => {
  const text = renderKubeProxyRestore(kubeProxyRules(goldenInputs()));
  t.is(text, GOLDEN_KUBE_PROXY.slice(1), diff(text, GOLDEN_KUBE_PROXY.slice(1)));
});

test('the restore text can carry the built-in chain jumps kube-proxy installs with iptables -I', (t) => {
  const text = renderKubeProxyRestore(kubeProxyRules(goldenInputs()), { includeBuiltinChains: true });
  t.true(text.includes('-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\n'));
  t.true(text.includes('-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\n'));
  t.false(GOLDEN_KUBE_PROXY.includes('-A PREROUTING'));
});

test('probabilities: the kernel keeps round(p * 2^31), iptables-save prints it with 11 decimals', (t) => {
  // The values a node prints, as iptables 1.8.9 printed them in a scratch namespace.
  t.is(formatSavedProbability(1 / 3), '0.33333333349');
  t.is(formatSavedProbability(1 / 2), '0.50000000000');
  t.is(formatSavedProbability(1 / 4), '0.25000000000');
  t.is(formatSavedProbability(1 / 5), '0.20000000019');
  t.is(formatSavedProbability(1 / 7), '0.14285714272');
  t.is(formatSavedProbability(1), '1.00000000000');
  t.is(formatSavedProbability(0), '0.00000000000');
  // 2^19 / 2^31 = 0.000244140625 ends in a 5 after 11 decimals: C rounds the tie to even.
  t.is(formatSavedProbability(1 / 4096), '0.00024414062');
});

test('probabilities: kube-proxy writes %0.10f of 1/n, ties to even as Go does', (t) => {
  t.is(formatKubeProxyProbability(1 / 3), '0.3333333333');
  t.is(formatKubeProxyProbability(1 / 2), '0.5000000000');
  t.is(formatKubeProxyProbability(2 / 3), '0.6666666667');
  // 1/2048 = 0.00048828125: toFixed(10) would round the tie up to ...813.
  t.is(formatKubeProxyProbability(1 / 2048), '0.0004882812');
  t.is(formatDoubleFixed(1.5, 0), '2');
  t.is(formatDoubleFixed(2.5, 0), '2');
  t.is(formatDoubleFixed(123.456, 2), '123.46');
  t.throws(() => formatDoubleFixed(-1, 2), { instanceOf: RangeError });
});

test('comments are quoted as xtables_save_string quotes them', (t) => {
  t.is(saveString('x'), 'x');
  t.is(saveString('a_b-9'), 'a_b-9');
  t.is(saveString('ns/svc:p80'), '"ns/svc:p80"');
  t.is(saveString('two words'), '"two words"');
  t.is(saveString('say "hi" it\'s \\'), '"say \\"hi\\" it\\\'s \\\\"');
  t.is(saveString(''), '""');
});

test('the JSON form carries addresses as text and each rule as its iptables-save line', (t) => {
  const json = ruleSetToJson(kubeProxyRules(goldenInputs()));
  const dnat = json.nat.rules.find((r) => r.target.kind === 'dnat')!;
  t.deepEqual(dnat.target, { kind: 'dnat', address: '10.244.1.10', port: 8080 });
  t.true(dnat.text.startsWith('-A KUBE-SEP-GWQABTP5GBYXHJY5 -p tcp'));
  const masq = json.nat.rules.find((r) => r.chain === 'KUBE-SVC-CDGGSHYLG3RE2FKL')!;
  t.deepEqual(masq.matches.find((m) => m.kind === 'source'), { kind: 'source', cidr: '10.244.0.0/16', negate: true });
  // Plain data all the way down: it survives a JSON round trip unchanged.
  t.deepEqual(JSON.parse(JSON.stringify(json)), json);
  t.deepEqual(json.filter.chains, ['KUBE-SERVICES', 'KUBE-EXTERNAL-SERVICES', 'KUBE-FORWARD', 'KUBE-NODEPORTS', 'KUBE-PROXY-FIREWALL']);
});
