/**
 * Shared builders: one resource record each, written through a `MessageWriter` into the
 * section it is in. `owner` is a zone name in presentation form, `QNAME` for the question's
 * own name (a 2-byte pointer that carries the client's letter case), or the offset of a name
 * already written (a pointer to exactly that name, its case included).
 */
import { CLASS, DNS_HEADER_LEN, TYPE } from './constants.js';
import type { MessageWriter } from './writer.js';
import type { Soa } from './zone.js';

const MAX_POINTER = 0x3fff;

/** The owner is the question name. */
export const QNAME = null;
export type Owner = string | number | typeof QNAME;

function owner(w: MessageWriter, name: Owner): void {
  if (name === QNAME) w.pointer(DNS_HEADER_LEN);
  else if (typeof name === 'number') w.pointer(name);
  else w.textName(name);
}

export function writeA(w: MessageWriter, name: Owner, ttl: number, addr: number): void {
  owner(w, name);
  const rd = w.beginRecord(TYPE.A, CLASS.IN, ttl);
  w.u32(addr);
  w.endRecord(rd);
}

export function writeCname(w: MessageWriter, name: Owner, ttl: number, target: string): void {
  owner(w, name);
  const rd = w.beginRecord(TYPE.CNAME, CLASS.IN, ttl);
  w.textName(target);
  w.endRecord(rd);
}

export function writePtr(w: MessageWriter, name: Owner, ttl: number, target: string): void {
  owner(w, name);
  const rd = w.beginRecord(TYPE.PTR, CLASS.IN, ttl);
  w.textName(target);
  w.endRecord(rd);
}

export function writeNs(w: MessageWriter, name: Owner, ttl: number, target: string): void {
  owner(w, name);
  const rd = w.beginRecord(TYPE.NS, CLASS.IN, ttl);
  w.textName(target);
  w.endRecord(rd);
}

/**
 * An SRV record whose target is `target[0, relativeEnd)` followed by the question's bytes at
 * `[questionAt, questionAt + suffixLength)`: a zone name ending in the zone as the client wrote
 * it (MessageWriter.textNameInQuestionCase). Whole: RFC 2782 forbids compressing it, and miekg/dns does not. Returns where the target
 * starts (from the message's start), for owners that must be that very name; -1 when it did
 * not fit.
 */
export function writeSrvInQuestionCase(
  w: MessageWriter,
  name: Owner,
  ttl: number,
  priority: number,
  weight: number,
  port: number,
  target: string,
  relativeEnd: number,
  questionAt: number,
  suffixLength: number,
): number {
  owner(w, name);
  const rd = w.beginRecord(TYPE.SRV, CLASS.IN, ttl);
  w.u16(priority);
  w.u16(weight);
  w.u16(port);
  const at = w.pos - w.start;
  w.textNameInQuestionCase(target, relativeEnd, questionAt, suffixLength);
  w.endRecord(rd);
  // Only the first 16 KiB of a message can be pointed at (14-bit offsets).
  return w.overflow || at > MAX_POINTER ? -1 : at;
}

/** One character-string per 255 bytes of ASCII text. */
export function writeTxt(w: MessageWriter, name: Owner, ttl: number, text: string): void {
  owner(w, name);
  const rd = w.beginRecord(TYPE.TXT, CLASS.IN, ttl);
  for (let at = 0; at === 0 || at < text.length; at += 255) {
    const part = text.slice(at, at + 255);
    w.u8(part.length);
    for (let i = 0; i < part.length; i++) w.u8(part.charCodeAt(i) & 0xff);
  }
  w.endRecord(rd);
}

export function writeSoa(w: MessageWriter, soa: Soa): void {
  w.textName(soa.zone);
  const rd = w.beginRecord(TYPE.SOA, CLASS.IN, soa.ttl);
  w.textName(soa.mname);
  w.textName(soa.rname);
  w.u32(soa.serial);
  w.u32(soa.refresh);
  w.u32(soa.retry);
  w.u32(soa.expire);
  w.u32(soa.minimum);
  w.endRecord(rd);
}
