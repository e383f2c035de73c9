/**
 * Before anything is timed: every DNS server answers a sample of the query file as it
 * should — the service's clusterIP for an existing name, NXDOMAIN with no answer for a
 * name that is not in the zone. A server that answers wrongly fails the benchmark rather
 * than producing a figure.
 */
import { createSocket, type Socket } from 'node:dgram';
import dnsPacket from 'dns-packet';
import type { Server } from './servers.js';

export interface Expectation {
  readonly name: string;
  /** The A record's address, or undefined for NXDOMAIN. */
  readonly ip: string | undefined;
}

const RCODES: Readonly<Record<number, string>> = { 0: 'NOERROR', 1: 'FORMERR', 2: 'SERVFAIL', 3: 'NXDOMAIN', 4: 'NOTIMP', 5: 'REFUSED' };

interface Answer {
  readonly rcode: string;
  readonly addresses: string[];
}

function ask(socket: Socket, server: Server, name: string, id: number, timeoutMs: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off('message', onMessage);
      reject(new Error(`${server.label}: no answer to ${name} A within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (msg: Buffer) => {
      let packet: ReturnType<typeof dnsPacket.decode>;
      try {
        packet = dnsPacket.decode(msg);
      } catch {
        return; // not an answer we can read: wait for ours or time out
      }
      if (packet.id !== id) return;
      clearTimeout(timer);
      socket.off('message', onMessage);
      const addresses = (packet.answers ?? []).filter((a) => a.type === 'A').map((a) => String((a as { data: unknown }).data));
      resolve({ rcode: RCODES[(packet.flags ?? 0) & 0x0f] ?? `RCODE${(packet.flags ?? 0) & 0x0f}`, addresses });
    };
    socket.on('message', onMessage);
    socket.send(dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name, type: 'A', class: 'IN' }] }), server.port, server.address);
  });
}

/** Asks `server` every expectation in turn; throws on the first wrong answer. */
export async function verifyAnswers(server: Server, expectations: readonly Expectation[]): Promise<void> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  try {
    let id = 1;
    for (const e of expectations) {
      const answer = await ask(socket, server, e.name, id++ & 0xffff, 2000);
      const ok = e.ip === undefined ? answer.rcode === 'NXDOMAIN' && answer.addresses.length === 0 : answer.rcode === 'NOERROR' && answer.addresses.length === 1 && answer.addresses[0] === e.ip;
      if (!ok) {
        const wanted = e.ip === undefined ? 'NXDOMAIN' : `NOERROR ${e.ip}`;
        throw new Error(`${server.label} answers ${e.name} A with ${answer.rcode} [${answer.addresses.join(', ')}], expected ${wanted}`);
      }
    }
  } finally {
    socket.close();
  }
}
