/**
 * Opening ports with whatever this host can do: podwire's addon where it was built,
 * otherwise the native-free fallbacks (the python TAP relay, node:dgram). Each result says
 * which backend it got and, for a fallback, why.
 */
import { DgramPort, type DgramOptions } from '../../native-free/udp.js';
import { RelayTapPort, type RelayTapOptions } from '../../native-free/tap-relay.js';
import { nativeIo, nativeIoUnavailable } from './native.js';
import type { DatagramPort, Port } from '../port/port.js';
import { TapPort, type TapOptions } from './tap.js';
import { UdpPort, type UdpOptions } from './udp.js';

export type TapBackend = 'addon' | 'python-relay';
export type OverlayBackend = 'addon' | 'dgram';

export interface OpenTapOptions extends TapOptions, RelayTapOptions {
  /** Insist on one backend (tests, benchmarks); by default the addon when available. */
  backend?: TapBackend;
}

export interface OpenedTap extends Port {
  readonly backend: TapBackend;
}

export interface OpenedOverlaySocket extends DatagramPort {
  readonly backend: OverlayBackend;
}

/** Why the last open fell back from the addon (undefined when it did not). */
export interface FallbackInfo {
  readonly fallbackReason?: string;
}

/**
 * Opens the TAP `name` with the addon, else through the python relay. Errors from the
 * chosen backend (EPERM without CAP_NET_ADMIN, EBUSY for a name in use) are thrown, not
 * papered over by trying the other: both would meet the same kernel.
 */
export async function openTapPort(name: string, options: OpenTapOptions = {}): Promise<OpenedTap & FallbackInfo> {
  const backend = options.backend ?? (nativeIo !== undefined ? 'addon' : 'python-relay');
  if (backend === 'addon') return TapPort.open(name, options);
  const port = await RelayTapPort.open(name, options);
  return withReason(port, options.backend === undefined ? nativeIoUnavailable : undefined);
}

/** Binds the overlay's UDP socket to address:port with the addon, else node:dgram. */
export async function openOverlaySocket(
  address: string | number,
  port: number,
  options: UdpOptions & DgramOptions & { backend?: OverlayBackend } = {},
): Promise<OpenedOverlaySocket & FallbackInfo> {
  const backend = options.backend ?? (nativeIo !== undefined ? 'addon' : 'dgram');
  if (backend === 'addon') return UdpPort.open(address, port, options);
  const socket = await DgramPort.open(address, port, options);
  return withReason(socket, options.backend === undefined ? nativeIoUnavailable : undefined);
}

function withReason<T extends object>(port: T, reason: string | undefined): T & FallbackInfo {
  if (reason !== undefined) Object.defineProperty(port, 'fallbackReason', { value: reason, enumerable: true });
  return port as T & FallbackInfo;
}
