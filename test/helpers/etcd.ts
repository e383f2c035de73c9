/**
 * Starts real etcd (the Debian etcd-server binary) for tests: one member or three, plain or
 * with client TLS, on loopback or inside a network namespace. Every member's data lives in one
 * fresh temporary directory that `stop()` removes; a test calls `stop()` in `t.teardown`.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ETCD = '/usr/bin/etcd';
const ETCDCTL = '/usr/bin/etcdctl';
const HEALTHY_WITHIN_MS = 20_000;
const STOP_WITHIN_MS = 10_000;

export interface EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<void>;
  /** SIGKILL, then waits for the exit. */
  kill(): Promise<void>;
  /** Starts again on the same data dir and waits until it is healthy. */
  start(): Promise<void>;
}

export interface EtcdCluster {
  /** host:port of every member's client URL. */
  readonly endpoints: string[];
  readonly members: EtcdMember[];
  /** The client's files (with `tls: true`). */
  readonly tls?: { cacert: string; cert: string; key: string };
  readonly dir: string;
  /** Runs etcdctl (API v3) against every endpoint with the TLS flags, inside the netns if any; resolves to its stdout. */
  etcdctl(args: string[]): Promise<string>;
  /** Stops every member and removes `dir`. */
  stop(): Promise<void>;
}

/** Whether etcd-server is installed, so tests can skip with a reason where it is not. */
export function etcdAvailable(): boolean {
  return existsSync(ETCD) && existsSync(ETCDCTL);
}

/** A port nobody listens on right now: bound on :0 and released (a race with others, hence the retry in startEtcd). */
async function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function inNetns(netns: string | undefined, file: string, args: string[]): [string, string[]] {
  return netns ? ['ip', ['netns', 'exec', netns, file, ...args]] : [file, args];
}

async function openssl(dir: string, args: string[]): Promise<void> {
  await run('openssl', args, { cwd: dir, timeout: 15_000 });
}

/** A CA, a server certificate for `ips` (IP SANs) and a client certificate, all EC P-256, in `dir`. */
async function makeCertificates(dir: string, ips: readonly string[]): Promise<{ cacert: string; cert: string; key: string; serverCert: string; serverKey: string }> {
  const key = (name: string) => openssl(dir, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', name]);
  await key('ca.key');
  await openssl(dir, ['req', '-x509', '-new', '-key', 'ca.key', '-subj', '/CN=pwt-ekv test CA', '-days', '2', '-out', 'ca.crt']);
  const sign = async (name: string, cn: string, ext: string) => {
    await key(`${name}.key`);
    await openssl(dir, ['req', '-new', '-key', `${name}.key`, '-subj', `/CN=${cn}`, '-out', `${name}.csr`]);
    writeFileSync(join(dir, `${name}.ext`), ext);
    await openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.crt`]);
  };
  const sans = [...new Set([...ips, '127.0.0.1'])].map((ip) => `IP:${ip}`).join(',');
  await sign('server', 'etcd', `subjectAltName=${sans}\nextendedKeyUsage=serverAuth,clientAuth\n`);
  await sign('client', 'podwire', 'extendedKeyUsage=clientAuth\n');
  return { cacert: join(dir, 'ca.crt'), cert: join(dir, 'client.crt'), key: join(dir, 'client.key'), serverCert: join(dir, 'server.crt'), serverKey: join(dir, 'server.key') };
}

function logTail(path: string, lines = 25): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

interface MemberPlan {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
}

class Member implements EtcdMember {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  readonly log: string;

  constructor(
    private readonly plan: MemberPlan,
    private readonly args: readonly string[],
    private readonly netns: string | undefined,
    private readonly healthy: (member: Member) => Promise<void>,
    dir: string,
  ) {
    this.log = join(dir, `${plan.name}.log`);
  }

  get name(): string {
    return this.plan.name;
  }
  get clientUrl(): string {
    return this.plan.clientUrl;
  }
  get running(): boolean {
    return this.child !== undefined;
  }

  /** Starts the process without waiting for health (three members need each other first). */
  spawn(): void {
    if (this.child) throw new Error(`etcd member ${this.name} is already running`);
    const fd = openSync(this.log, 'a');
    const [file, args] = inNetns(this.netns, ETCD, [...this.args]);
    const child = spawn(file, args, { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => {
      if (this.child === child) this.child = undefined;
      resolve();
    }));
  }

  async start(): Promise<void> {
    this.spawn();
    await this.healthy(this);
  }

  stop(): Promise<void> {
    return this.signal('SIGTERM');
  }

  kill(): Promise<void> {
    return this.signal('SIGKILL');
  }

  /** For the process exit hook: no waiting. */
  killNow(): void {
    this.child?.kill('SIGKILL');
  }

  private async signal(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill(signal);
    const late = setTimeout(() => child.kill('SIGKILL'), STOP_WITHIN_MS);
    await this.exited;
    clearTimeout(late);
  }
}

async function startOnce(dir: string, opts: Required<Pick<StartOptions, 'members' | 'host' | 'name'>> & StartOptions): Promise<EtcdCluster> {
  const scheme = opts.tls ? 'https' : 'http';
  const plans: MemberPlan[] = [];
  for (let i = 0; i < opts.members; i++) {
    // In a namespace the ports are ours alone; on the shared loopback they are whatever is free.
    const clientPort = opts.netns ? 2379 + 2 * i : await freePort(opts.host);
    const peerPort = opts.netns ? 2380 + 2 * i : await freePort(opts.host);
    plans.push({ name: `${opts.name}-m${i}`, clientUrl: `${scheme}://${opts.host}:${clientPort}`, peerUrl: `http://${opts.host}:${peerPort}` });
  }
  const certs = opts.tls ? await makeCertificates(dir, [opts.host]) : undefined;
  const tls = certs ? { cacert: certs.cacert, cert: certs.cert, key: certs.key } : undefined;
  const endpoints = plans.map((p) => p.clientUrl.replace(/^https?:\/\//, ''));
  const tlsFlags = tls ? [`--cacert=${tls.cacert}`, `--cert=${tls.cert}`, `--key=${tls.key}`] : [];

  const etcdctlAt = async (urls: readonly string[], args: string[], timeoutMs = 15_000): Promise<string> => {
    const [file, argv] = inNetns(opts.netns, ETCDCTL, [`--endpoints=${urls.join(',')}`, ...tlsFlags, ...args]);
    const { stdout } = await run(file, argv, { env: { ...process.env, ETCDCTL_API: '3' }, timeout: timeoutMs });
    return stdout;
  };

  const healthy = async (member: Member): Promise<void> => {
    const until = Date.now() + HEALTHY_WITHIN_MS;
    let last = '';
    while (Date.now() < until) {
      if (!member.running) throw new Error(`etcd member ${member.name} exited while starting; its log ends:\n${logTail(member.log)}`);
      try {
        await etcdctlAt([member.clientUrl], ['endpoint', 'health', '--command-timeout=2s'], 5_000);
        return;
      } catch (e) {
        last = String((e as { stderr?: string }).stderr ?? e).trim();
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`etcd member ${member.name} not healthy within ${HEALTHY_WITHIN_MS / 1000} s (${last}); its log ends:\n${logTail(member.log)}`);
  };

  const initialCluster = plans.map((p) => `${p.name}=${p.peerUrl}`).join(',');
  const members = plans.map((p) => {
    const args = [
      `--name=${p.name}`,
      `--data-dir=${join(dir, `${p.name}.etcd`)}`,
      `--listen-client-urls=${p.clientUrl}`,
      `--advertise-client-urls=${p.clientUrl}`,
      `--listen-peer-urls=${p.peerUrl}`,
      `--initial-advertise-peer-urls=${p.peerUrl}`,
      `--initial-cluster=${initialCluster}`,
      `--initial-cluster-token=${opts.name}`,
      '--initial-cluster-state=new',
      '--logger=zap',
      ...(certs ? [`--cert-file=${certs.serverCert}`, `--key-file=${certs.serverKey}`, '--client-cert-auth', `--trusted-ca-file=${certs.cacert}`] : []),
    ];
    return new Member(p, args, opts.netns, healthy, dir);
  });

  // A test process that dies without its teardown still takes its etcd with it.
  const onExit = () => members.forEach((m) => m.killNow());
  process.once('exit', onExit);
  const stopAll = async () => {
    await Promise.all(members.map((m) => m.stop()));
    process.removeListener('exit', onExit);
  };
  try {
    members.forEach((m) => m.spawn());
    await Promise.all(members.map((m) => healthy(m)));
  } catch (e) {
    await stopAll();
    throw e;
  }
  return {
    endpoints,
    members,
    tls,
    dir,
    etcdctl: (args) => etcdctlAt(plans.map((p) => p.clientUrl), args),
    stop: async () => {
      await stopAll();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface StartOptions {
  members?: 1 | 3;
  /** Listen address, default 127.0.0.1. */
  host?: string;
  /** Run inside this network namespace (ip netns exec); the fixed ports 2379/2380 (+2 per member) are used. */
  netns?: string;
  tls?: boolean;
  /** Member name prefix and cluster token. */
  name?: string;
}

export async function startEtcd(opts: StartOptions = {}): Promise<EtcdCluster> {
  const full = { ...opts, members: opts.members ?? 1, host: opts.host ?? '127.0.0.1', name: opts.name ?? 'pwt-ekv' };
  const dir = mkdtempSync(join(tmpdir(), 'pwt-etcd-'));
  try {
    // Free ports are only free until someone else takes them: a bind conflict gets new ones.
    for (let attempt = 1; ; attempt++) {
      try {
        return await startOnce(dir, full);
      } catch (e) {
        const conflict = /address already in use/.test(String(e));
        if (!conflict || opts.netns || attempt >= 3) throw e;
        for (const entry of ['m0', 'm1', 'm2']) rmSync(join(dir, `${full.name}-${entry}.etcd`), { recursive: true, force: true });
      }
    }
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}
