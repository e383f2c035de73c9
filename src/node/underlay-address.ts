/**
 * The machine's underlay address, as flanneld picks its public IP when none is given: the
 * IPv4 address of the interface that holds the default route.
 */
import { parseIpv4 } from '../packet/addr.js';
import { ip } from './netns.js';

export interface UnderlayChoice {
  readonly address: number;
  readonly iface: string;
  /** The interface's MTU: the underlay's path MTU as this machine sees it. */
  readonly mtu: number;
}

export async function defaultRouteAddress(): Promise<UnderlayChoice> {
  const routes = JSON.parse((await ip('-j', '-4', 'route', 'show', 'default')) || '[]') as { dev?: string }[];
  const iface = routes.find((r) => typeof r.dev === 'string')?.dev;
  if (iface === undefined) throw new Error('this machine has no IPv4 default route to take the underlay address from; give --underlay IP');
  return interfaceAddress(iface);
}

/** The interface that holds `address`, checked to exist on this machine. */
export async function addressInterface(address: number): Promise<UnderlayChoice> {
  const links = JSON.parse((await ip('-j', '-4', 'addr', 'show')) || '[]') as AddrInfo[];
  for (const link of links) {
    if (link.addr_info?.some((a) => a.family === 'inet' && parseIpv4(a.local ?? '') === address)) return { address, iface: link.ifname, mtu: link.mtu };
  }
  throw new Error('no interface of this machine has that address (--underlay must be one of its own)');
}

interface AddrInfo {
  ifname: string;
  mtu: number;
  addr_info?: { family?: string; local?: string }[];
}

async function interfaceAddress(iface: string): Promise<UnderlayChoice> {
  const links = JSON.parse((await ip('-j', '-4', 'addr', 'show', 'dev', iface)) || '[]') as AddrInfo[];
  const local = links[0]?.addr_info?.find((a) => a.family === 'inet')?.local;
  const address = local === undefined ? undefined : parseIpv4(local);
  if (address === undefined) throw new Error(`${iface}, which holds the default route, has no IPv4 address; give --underlay IP`);
  return { address, iface, mtu: links[0].mtu };
}
