/**
 * The Cluster document's `spec.conntrack`: connection tracking as a node has it. kube-proxy
 * sets two TCP timeouts at start (its `conntrack.tcpEstablishedTimeout`, 24h, and
 * `conntrack.tcpCloseWaitTimeout`, 1h); the UDP ones are the kernel's sysctls
 * (`nf_conntrack_udp_timeout` 30 s, `nf_conntrack_udp_timeout_stream` 120 s); and the
 * packet and byte counters are the kernel's `nf_conntrack_acct`, off by default.
 */
import type { ConntrackSettings } from './model.js';
import type { Field } from './yaml-reader.js';

export const DEFAULT_CONNTRACK: ConntrackSettings = {
  accounting: false,
  tcpEstablishedTimeoutSeconds: 86400,
  tcpCloseWaitTimeoutSeconds: 3600,
  udpTimeoutSeconds: 30,
  udpStreamTimeoutSeconds: 120,
};

/**
 * The longest timeout a connection may have: entries keep their expiry as wrapping
 * milliseconds, exact up to 24.8 days (netfilter/conntrack-timeouts.ts's bound).
 */
export const MAX_CONNTRACK_TIMEOUT_SECONDS = 10 * 86400;

const TIMEOUTS = ['tcpEstablishedTimeoutSeconds', 'tcpCloseWaitTimeoutSeconds', 'udpTimeoutSeconds', 'udpStreamTimeoutSeconds'] as const;

/** `spec.conntrack` (absent: the defaults); undefined after reporting what is wrong. */
export function decodeConntrack(field: Field): ConntrackSettings | undefined {
  if (!field.present) return DEFAULT_CONNTRACK;
  const m = field.map();
  if (m === undefined) return undefined;
  let ok = true;
  const settings: { -readonly [K in keyof ConntrackSettings]: ConntrackSettings[K] } = { ...DEFAULT_CONNTRACK };
  for (const [key, value] of m.entries) {
    if (key === 'accounting') {
      const on = value.boolean();
      if (on === undefined) ok = false;
      else settings.accounting = on;
    } else if (isTimeout(key)) {
      const seconds = value.integer(`must be an integer number of seconds between 1 and ${MAX_CONNTRACK_TIMEOUT_SECONDS}`, 1, MAX_CONNTRACK_TIMEOUT_SECONDS);
      if (seconds === undefined) ok = false;
      else settings[key] = seconds;
    } else {
      value.error(`is not a conntrack setting (they are accounting, ${TIMEOUTS.join(', ')})`);
      ok = false;
    }
  }
  return ok ? settings : undefined;
}

function isTimeout(key: string): key is (typeof TIMEOUTS)[number] {
  return (TIMEOUTS as readonly string[]).includes(key);
}
