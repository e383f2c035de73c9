/**
 * Why a frame was refused by a checked constructor or a parse.
 *
 * Values are small integers so that a drop counter can be a typed array indexed by the
 * error, and so that returning one allocates nothing. `0` is never an error: checked
 * constructors that re-point an existing view return `PacketOk`.
 */
export const PacketOk = 0 as const;
export type PacketOk = typeof PacketOk;

export const PacketError = {
  /** The buffer is shorter than the fixed header. */
  Truncated: 1,
  /** A header-length field (IHL, data offset) is below the minimum or past the buffer. */
  BadHeaderLength: 2,
  /** A total-length field is shorter than the header or longer than the buffer. */
  BadLength: 3,
  /** A version field does not match the protocol (IPv4 version 4, IPv6 version 6). */
  BadVersion: 4,
  /** A checksum does not verify. */
  BadChecksum: 5,
  /** A field holds a value the protocol forbids (port 0, ARP lengths, VXLAN I flag). */
  BadField: 6,
  /** A TLV option runs past the end of its area. */
  BadOption: 7,
} as const;

export type PacketError = (typeof PacketError)[keyof typeof PacketError];

/** One more than the largest error value: the length of a per-reason counter array. */
export const PACKET_ERROR_COUNT = 8;

const NAMES: readonly string[] = [
  'ok',
  'truncated',
  'bad-header-length',
  'bad-length',
  'bad-version',
  'bad-checksum',
  'bad-field',
  'bad-option',
];

export function packetErrorName(code: number): string {
  return NAMES[code] ?? `unknown-${code}`;
}

