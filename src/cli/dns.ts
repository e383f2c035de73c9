/**
 * `podwire dns NAME [TYPE]`: asks the cluster DNS on a node's loopback port and prints the
 * answer as zone-file lines, dig style, with no dig needed on the machine.
 */
import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { createConnection } from 'node:net';
import { formatIpv4 } from '../packet/addr.js';
import { CLASS, DNS_HEADER_LEN, FLAG, HDR, RCODE, RCODE_MASK, TYPE } from '../dns/constants.js';
import { NameReader, textToWire, wireToText } from '../dns/name.js';
import { readRecords } from '../dns/records.js';
import { UsageError } from './args.js';

const TYPE_NAMES = new Map<number, string>(Object.entries(TYPE).map(([name, code]) => [code, name]));
const RCODE_NAMES = new Map<number, string>(Object.entries(RCODE).map(([name, code]) => [code, name]));
const TIMEOUT_MS = 3000;

export function buildQuery(name: string, type: string, id: number): Buffer {
  const qtype = (TYPE as Record<string, number>)[type.toUpperCase()] ?? (/^TYPE\d+$/i.test(type) ? Number(type.slice(4)) : undefined);
  if (qtype === undefined) throw new UsageError(`podwire dns: unknown type ${type} (A, AAAA, SRV, PTR, CNAME, TXT, SOA, NS or TYPEn)`);
  const wire = textToWire(name.endsWith('.') ? name : `${name}.`);
  if (wire === undefined) throw new UsageError(`podwire dns: ${JSON.stringify(name)} is not a valid domain name`);
  const query = Buffer.alloc(DNS_HEADER_LEN + wire.length + 4);
  query.writeUInt16BE(id, HDR.ID);
  query.writeUInt16BE(FLAG.RD, HDR.FLAGS);
  query.writeUInt16BE(1, HDR.QDCOUNT);
  query.set(wire, DNS_HEADER_LEN);
  query.writeUInt16BE(qtype, DNS_HEADER_LEN + wire.length);
  query.writeUInt16BE(CLASS.IN, DNS_HEADER_LEN + wire.length + 2);
  return query;
}

/** The response as dig prints its status line and sections. */
export function formatResponse(msg: Buffer): string {
  if (msg.length < DNS_HEADER_LEN) return ';; malformed answer (shorter than a header)\n';
  const flags = msg.readUInt16BE(HDR.FLAGS);
  const rcode = flags & RCODE_MASK;
  const counts: [number, number, number] = [msg.readUInt16BE(HDR.ANCOUNT), msg.readUInt16BE(HDR.NSCOUNT), msg.readUInt16BE(HDR.ARCOUNT)];
  const flagNames = (['QR', 'AA', 'TC', 'RD', 'RA'] as const).filter((f) => (flags & FLAG[f]) !== 0).map((f) => f.toLowerCase());
  const out = [`;; status: ${RCODE_NAMES.get(rcode) ?? rcode}, id: ${msg.readUInt16BE(HDR.ID)}, flags: ${flagNames.join(' ')}`];
  // dig's warning, which a real node's CoreDNS draws for every answer of its zone.
  if ((flags & FLAG.RD) !== 0 && (flags & FLAG.RA) === 0) out.push(';; WARNING: recursion requested but not available');
  // Skip the question, then read every record uncompressed.
  const reader = new NameReader();
  if (reader.read(msg, 0, msg.length, DNS_HEADER_LEN, false) !== 0) return `${out.join('\n')}\n;; malformed question\n`;
  const block = readRecords(msg, 0, msg.length, reader.end + 4, counts);
  if (typeof block === 'number') return `${out.join('\n')}\n;; malformed records\n`;
  const titles = ['ANSWER', 'AUTHORITY', 'ADDITIONAL'];
  let at = 0;
  const b = Buffer.from(block.bytes.buffer, block.bytes.byteOffset, block.bytes.byteLength);
  for (let section = 0; section < 3; section++) {
    if (block.counts[section] === 0) continue;
    out.push('', `;; ${titles[section]} SECTION:`);
    for (let i = 0; i < block.counts[section]; i++) {
      const owner = wireToText(b, at);
      at += nameLength(b, at);
      const type = b.readUInt16BE(at);
      const ttl = b.readUInt32BE(at + 4);
      const rdlen = b.readUInt16BE(at + 8);
      const rdata = at + 10;
      out.push(`${owner}\t${ttl}\tIN\t${TYPE_NAMES.get(type) ?? `TYPE${type}`}\t${formatRdata(b, type, rdata, rdlen)}`);
      at = rdata + rdlen;
    }
  }
  return `${out.join('\n')}\n`;
}

function nameLength(b: Buffer, at: number): number {
  let p = at;
  while (b[p] !== 0) p += b[p] + 1;
  return p - at + 1;
}

function formatRdata(b: Buffer, type: number, at: number, length: number): string {
  switch (type) {
    case TYPE.A:
      return formatIpv4(b.readUInt32BE(at));
    case TYPE.CNAME:
    case TYPE.PTR:
    case TYPE.NS:
      return wireToText(b, at);
    case TYPE.SRV:
      return `${b.readUInt16BE(at)} ${b.readUInt16BE(at + 2)} ${b.readUInt16BE(at + 4)} ${wireToText(b, at + 6)}`;
    case TYPE.SOA: {
      const mname = wireToText(b, at);
      const rAt = at + nameLength(b, at);
      const rname = wireToText(b, rAt);
      const n = rAt + nameLength(b, rAt);
      return `${mname} ${rname} ${[0, 4, 8, 12, 16].map((o) => b.readUInt32BE(n + o)).join(' ')}`;
    }
    case TYPE.TXT: {
      const parts: string[] = [];
      for (let p = at; p < at + length; p += b[p] + 1) parts.push(JSON.stringify(b.subarray(p + 1, p + 1 + b[p]).toString('latin1')));
      return parts.join(' ');
    }
    default:
      return `\\# ${length} ${b.subarray(at, at + length).toString('hex')}`;
  }
}

/** Sends the query to 127.0.0.1:port over UDP (or TCP) and formats the answer. */
export async function askDns(port: number, name: string, type: string, tcp: boolean): Promise<string> {
  const query = buildQuery(name, type, randomInt(65536));
  const answer = tcp ? await overTcp(port, query) : await overUdp(port, query);
  return formatResponse(answer);
}

function overUdp(port: number, query: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error(`no answer from 127.0.0.1:${port} in ${TIMEOUT_MS} ms`));
    }, TIMEOUT_MS);
    socket.on('message', (msg) => {
      if (msg.length < 2 || msg.readUInt16BE(0) !== query.readUInt16BE(0)) return;
      clearTimeout(timer);
      socket.close();
      resolve(msg);
    });
    socket.send(query, port, '127.0.0.1');
  });
}

function overTcp(port: number, query: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(port, '127.0.0.1');
    let pending = Buffer.alloc(0);
    socket.setTimeout(TIMEOUT_MS, () => {
      socket.destroy();
      reject(new Error(`no answer from 127.0.0.1:${port} in ${TIMEOUT_MS} ms`));
    });
    socket.on('error', reject);
    socket.on('connect', () => {
      const framed = Buffer.alloc(2 + query.length);
      framed.writeUInt16BE(query.length, 0);
      query.copy(framed, 2);
      socket.write(framed);
    });
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      if (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        socket.end();
        resolve(pending.subarray(2, 2 + pending.readUInt16BE(0)));
      }
    });
  });
}
