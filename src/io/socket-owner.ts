/**
 * Who owns the socket on the other end of a loopback conversation: the uid the kernel
 * prints for each socket in /proc/net/{tcp,udp}{,6} (sk_uid, set from the creator's fsuid
 * when the socket was made, so a root tool that later drops privileges still counts as
 * root, and a socket made by an unprivileged user in a user namespace shows its real uid).
 *
 * On loopback a sender cannot lie about its source port without CAP_NET_RAW, so the
 * source port names the sending socket and the table names its owner. TCP has SO_PEERCRED
 * only for Unix sockets, and sock_diag over netlink needs code outside Node; these tables
 * are what `ss -e` and `netstat -e` fall back to, and every user can read them.
 *
 * `scanSocketTable` is pure (bytes in, one callback per socket line); the readers below do
 * the I/O. Addresses are numbers in network order (127.0.0.1 = 0x7f000001); an IPv6 line
 * gives its IPv4-mapped address, 0 for `::`, and -1 for any other IPv6 address.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';

/** One socket line, reused for every line of a scan: copy what you keep. */
export interface SocketLine {
  localAddr: number;
  localPort: number;
  remoteAddr: number;
  remotePort: number;
  uid: number;
  /** 0 for a socket no process holds any more (orphaned, or a TIME_WAIT remnant, which always prints uid 0). */
  inode: number;
}

const LITTLE_ENDIAN = endianness() === 'LE';
const NEWLINE = 0x0a;
const SPACE = 0x20;
const COLON = 0x3a;
/** Field numbers of a line: `sl local rem st tx:rx tr:when retrnsmt uid ...`. */
const FIELD_LOCAL = 1;
const FIELD_REMOTE = 2;
const FIELD_UID = 7;
const FIELD_INODE = 9;
const NOT_IPV4 = -1;

/**
 * Calls `visit` for every well-formed socket line of a /proc/net/{tcp,udp}{,6} text in
 * `text[0, length)` (the heading line is skipped). Returns the number of lines that did not
 * parse, which callers treat as sockets of unknown owner.
 */
export function scanSocketTable(text: Uint8Array, length: number, line: SocketLine, visit: (line: SocketLine) => void): number {
  let malformed = 0;
  let at = indexOfByte(text, NEWLINE, 0, length) + 1;
  if (at === 0) return 0;
  while (at < length) {
    let end = indexOfByte(text, NEWLINE, at, length);
    if (end < 0) end = length;
    if (parseLine(text, at, end, line)) visit(line);
    else if (!blank(text, at, end)) malformed++;
    at = end + 1;
  }
  return malformed;
}

function parseLine(text: Uint8Array, start: number, end: number, line: SocketLine): boolean {
  let field = 0;
  let at = start;
  let complete = false;
  while (at < end) {
    while (at < end && text[at] === SPACE) at++;
    if (at >= end) break;
    let stop = at;
    while (stop < end && text[stop] !== SPACE) stop++;
    if (field === FIELD_LOCAL || field === FIELD_REMOTE) {
      const colon = indexOfByte(text, COLON, at, stop);
      if (colon < 0 || stop - colon !== 5) return false;
      const addr = parseAddress(text, at, colon);
      const port = parseHex(text, colon + 1, stop);
      if (addr === undefined || port < 0) return false;
      if (field === FIELD_LOCAL) {
        line.localAddr = addr;
        line.localPort = port;
      } else {
        line.remoteAddr = addr;
        line.remotePort = port;
      }
    } else if (field === FIELD_UID) {
      const uid = parseDecimal(text, at, stop);
      if (uid < 0) return false;
      line.uid = uid;
    } else if (field === FIELD_INODE) {
      const inode = parseDecimal(text, at, stop);
      if (inode < 0) return false;
      line.inode = inode;
      complete = true;
      break;
    }
    field++;
    at = stop;
  }
  return complete;
}

/** An address as the kernel prints it: 8 hex digits (IPv4) or 32 (IPv6), each 32-bit word in host order. */
function parseAddress(text: Uint8Array, start: number, end: number): number | undefined {
  if (end - start === 8) {
    const word = parseHex(text, start, end);
    return word < 0 ? undefined : hostWordToNetwork(word);
  }
  if (end - start !== 32) return undefined;
  const words = [0, 0, 0, 0];
  for (let i = 0; i < 4; i++) {
    const word = parseHex(text, start + 8 * i, start + 8 * i + 8);
    if (word < 0) return undefined;
    words[i] = hostWordToNetwork(word);
  }
  if (words[0] !== 0 || words[1] !== 0) return NOT_IPV4;
  if (words[2] === 0 && words[3] === 0) return 0; // `::`, the wildcard
  return words[2] === 0x0000ffff ? words[3] : NOT_IPV4;
}

function hostWordToNetwork(word: number): number {
  if (!LITTLE_ENDIAN) return word;
  return (((word & 0xff) << 24) | ((word & 0xff00) << 8) | ((word >>> 8) & 0xff00) | (word >>> 24)) >>> 0;
}

function parseHex(text: Uint8Array, start: number, end: number): number {
  if (end <= start || end - start > 8) return -1;
  let value = 0;
  for (let i = start; i < end; i++) {
    const c = text[i];
    const digit = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x41 && c <= 0x46 ? c - 0x37 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1;
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

function parseDecimal(text: Uint8Array, start: number, end: number): number {
  if (end <= start || end - start > 10) return -1;
  let value = 0;
  for (let i = start; i < end; i++) {
    const c = text[i];
    if (c < 0x30 || c > 0x39) return -1;
    value = value * 10 + (c - 0x30);
  }
  return value;
}

function indexOfByte(text: Uint8Array, byte: number, from: number, to: number): number {
  for (let i = from; i < to; i++) if (text[i] === byte) return i;
  return -1;
}

function blank(text: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (text[i] !== SPACE && text[i] !== 0x09 && text[i] !== 0x0d) return false;
  return true;
}

/** The UDP socket tables of this network namespace, IPv4 and IPv6 (a dual-stack socket can send to 127.0.0.1). */
export const UDP_TABLES = ['/proc/net/udp', '/proc/net/udp6'];
export const TCP_TABLES = ['/proc/net/tcp', '/proc/net/tcp6'];

/** Past this a table is not read further and every port counts as of unknown owner. */
const MAX_TABLE_BYTES = 32 << 20;

/**
 * Which local UDP ports only root's sockets hold, from a fresh read of the UDP tables. One
 * `refresh` per batch of datagrams: reading the tables costs tens of microseconds on a host
 * with a few hundred UDP sockets, into a buffer reused from read to read, and the answer per
 * port is one array lookup. Fail closed: a port that any non-root socket holds (at any
 * address, since SO_REUSEADDR lets a wildcard socket share a port with a specific one), or
 * that no socket holds, or any port after a table failed to read whole, is not root's.
 */
export class UdpPortOwners {
  private buf = Buffer.alloc(64 << 10);
  /** Per port: the generation of the last refresh that saw it, and whether all its sockets were root's. */
  private readonly seen = new Uint32Array(65536);
  private readonly rootOnly = new Uint8Array(65536);
  private generation = 0;
  private trusted = false;
  private readonly line: SocketLine = { localAddr: 0, localPort: 0, remoteAddr: 0, remotePort: 0, uid: 0, inode: 0 };
  private readonly visit = (line: SocketLine): void => {
    const port = line.localPort;
    const root = line.uid === 0 && line.inode !== 0;
    if (this.seen[port] !== this.generation) {
      this.seen[port] = this.generation;
      this.rootOnly[port] = root ? 1 : 0;
    } else if (!root) this.rootOnly[port] = 0;
  };

  constructor(private readonly tables: readonly string[] = UDP_TABLES) {}

  /** Reads the tables again; false (and nothing trusted) when one could not be read whole. */
  refresh(): boolean {
    this.generation = (this.generation + 1) >>> 0;
    if (this.generation === 0) {
      this.seen.fill(0);
      this.generation = 1;
    }
    this.trusted = true;
    for (const path of this.tables) {
      const length = this.read(path);
      if (length < 0) {
        // udp6 is absent where IPv6 is off: nothing can send from there then.
        if (length === MISSING) continue;
        this.trusted = false;
        return false;
      }
      if (scanSocketTable(this.buf, length, this.line, this.visit) > 0) this.trusted = false;
    }
    return this.trusted;
  }

  /** Did the last refresh see any socket on `port`? (A read can skip a line while sockets come and go: a seq_file hands the table out a page per read().) */
  saw(port: number): boolean {
    return this.seen[port] === this.generation;
  }

  /** Is every socket holding local port `port` root's, as of the last refresh? */
  isRootOnly(port: number): boolean {
    return this.trusted && this.seen[port] === this.generation && this.rootOnly[port] === 1;
  }

  /** The table's bytes into the reused buffer (grown when a read fills it): the length, or MISSING / UNREADABLE. */
  private read(path: string): number {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ENOENT' ? MISSING : UNREADABLE;
    }
    try {
      let length = 0;
      for (;;) {
        if (length === this.buf.length) {
          if (this.buf.length >= MAX_TABLE_BYTES) return UNREADABLE;
          const bigger = Buffer.alloc(this.buf.length * 2);
          this.buf.copy(bigger, 0, 0, length);
          this.buf = bigger;
        }
        const n = readSync(fd, this.buf, length, this.buf.length - length, null);
        if (n === 0) return length;
        length += n;
      }
    } catch {
      return UNREADABLE;
    } finally {
      closeSync(fd);
    }
  }
}

const MISSING = -1;
const UNREADABLE = -2;

/** A TCP connection to one of our listeners, by its client's end. */
export interface TcpPeer {
  clientAddr: number;
  clientPort: number;
}

/**
 * The owners of the client ends of TCP connections to a server (address and port), from one
 * read of the TCP tables for all of them: `uids[i]` is the uid of `peers[i]`'s socket, or -1
 * when no line (or more than one, which a 4-tuple cannot have) matches or a table failed.
 * Reading /proc/net/tcp walks the whole established hash (milliseconds on a large host, far
 * more on a loaded one), so it is asynchronous and callers batch their questions; one
 * lookup at a time per instance, which owns the buffer the tables are read into.
 */
export class TcpPeerOwners {
  private buf = Buffer.alloc(1 << 20);
  private busy = false;
  private readonly line: SocketLine = { localAddr: 0, localPort: 0, remoteAddr: 0, remotePort: 0, uid: 0, inode: 0 };

  constructor(private readonly tables: readonly string[] = TCP_TABLES) {}

  async lookup(peers: readonly TcpPeer[], serverAddr: number, serverPort: number): Promise<Int32Array> {
    const uids = new Int32Array(peers.length).fill(-1);
    if (this.busy) throw new Error('TcpPeerOwners: one lookup at a time');
    this.busy = true;
    try {
      const byPort = new Map<number, number[]>();
      peers.forEach((p, i) => byPort.set(p.clientPort, [...(byPort.get(p.clientPort) ?? []), i]));
      const matches = new Uint8Array(peers.length);
      for (const path of this.tables) {
        const length = await this.read(path);
        if (length === MISSING) continue;
        if (length < 0) return uids.fill(-1);
        scanSocketTable(this.buf, length, this.line, (l) => {
          if (l.remotePort !== serverPort || l.remoteAddr !== serverAddr || l.inode === 0) return;
          for (const i of byPort.get(l.localPort) ?? []) {
            if (peers[i].clientAddr !== l.localAddr) continue;
            matches[i]++;
            uids[i] = l.uid;
          }
        });
      }
      for (let i = 0; i < peers.length; i++) if (matches[i] !== 1) uids[i] = -1;
      return uids;
    } finally {
      this.busy = false;
    }
  }

  /**
   * The table into the buffer (grown when a read fills it): the length, or MISSING /
   * UNREADABLE. One big read() at a time: a seq_file hands out about a page per call
   * whatever the size asked, and readFile's way would go round the thread pool as often.
   */
  private async read(path: string): Promise<number> {
    let handle: FileHandle | undefined;
    try {
      handle = await open(path, 'r');
      let length = 0;
      for (;;) {
        if (length === this.buf.length) {
          if (this.buf.length >= MAX_TABLE_BYTES) return UNREADABLE;
          const bigger = Buffer.alloc(this.buf.length * 2);
          this.buf.copy(bigger, 0, 0, length);
          this.buf = bigger;
        }
        const { bytesRead } = await handle.read(this.buf, length, this.buf.length - length, null);
        if (bytesRead === 0) return length;
        length += bytesRead;
      }
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ENOENT' ? MISSING : UNREADABLE;
    } finally {
      await handle?.close();
    }
  }
}
