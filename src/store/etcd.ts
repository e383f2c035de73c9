/**
 * The one adapter between podwire and etcd v3 (through the etcd3 package): keys and values
 * as strings, revisions as numbers, a deadline on every call, StoreUnreachable for every
 * failure to reach etcd, leases kept alive, prefix watches that resume without loss or
 * repetition, and leader election by one transaction on a key that holds the candidate.
 * Nothing else in podwire imports etcd3.
 */
import { readFileSync } from 'node:fs';
import {
  castGrpcError,
  CompareResult,
  CompareTarget,
  Etcd3,
  EtcdLeaseInvalidError,
  isRecoverableError,
  Range,
  type ICompare,
  type IDuplexStream,
  type IKeyValue,
  type IOptions,
  type IRequestOp,
  type IWatchRequest,
  type IWatchResponse,
} from 'etcd3';
import { StoreUnreachable, type EtcdConnection } from './connection.js';

export { parseEtcdUrl, StoreUnreachable, type EtcdConnection } from './connection.js';

export interface KeyValue {
  readonly key: string;
  readonly value: string;
  readonly modRevision: number;
  readonly createRevision: number;
  /** The lease's id, '0' for none. */
  readonly lease: string;
}

export type WatchEvent =
  | { readonly type: 'put'; readonly kv: KeyValue }
  | { readonly type: 'delete'; readonly key: string; readonly modRevision: number };

export interface WatchHandlers {
  /** Events in revision order; `revision` is the store revision they bring the watcher to. */
  onEvents(events: readonly WatchEvent[], revision: number): void;
  /** The whole prefix as it is now: on start, and again whenever the watch cannot resume (compacted past the last revision seen). The consumer replaces what it had and reconciles the difference. */
  onSnapshot(kvs: readonly KeyValue[], revision: number): void;
}

export interface EtcdLease {
  readonly id: string;
  readonly ttlSeconds: number;
  revoke(): Promise<void>;
}

export interface EtcdKvOptions {
  /** Told on every change: false on the first failure to reach etcd, true when a call succeeds again. */
  onReachability?: (reachable: boolean, why: string) => void;
  /** The deadline of each call, default 3000 ms. */
  callTimeoutMs?: number;
}

const DEFAULT_CALL_TIMEOUT_MS = 3000;
const BACKOFF_FIRST_MS = 250;
const BACKOFF_LAST_MS = 5000;
/** Retries of a failed keepalive come this soon (or at the keepalive interval, if shorter). */
const KEEPALIVE_RETRY_MS = 500;
/** A key no one writes: the reachability probe reads it. */
const PROBE_KEY = Buffer.from('\0podwire/probe');

/** The next backoff step: doubling from 250 ms up to 5 s. */
export function nextBackoff(ms: number): number {
  return Math.min(ms * 2, BACKOFF_LAST_MS);
}

function toKeyValue(kv: IKeyValue): KeyValue {
  return {
    key: kv.key.toString(),
    value: kv.value.toString(),
    modRevision: Number(kv.mod_revision),
    createRevision: Number(kv.create_revision),
    lease: String(kv.lease),
  };
}

/** A watch response's events as WatchEvents, leaving out those at or below `after` (already delivered). */
export function eventsAfter(response: Pick<IWatchResponse, 'events'>, after: number): WatchEvent[] {
  const out: WatchEvent[] = [];
  for (const ev of response.events) {
    const modRevision = Number(ev.kv.mod_revision);
    if (modRevision <= after) continue;
    out.push(ev.type === 'Delete' ? { type: 'delete', key: ev.kv.key.toString(), modRevision } : { type: 'put', kv: toKeyValue(ev.kv) });
  }
  return out;
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** A caller's handler that throws is a bug of the caller: it surfaces, but not inside our state machines. */
function deliver(fn: () => void): void {
  try {
    fn();
  } catch (e) {
    setImmediate(() => {
      throw e;
    });
  }
}

class CallDeadlinePassed extends Error {}

function unreachableError(e: unknown): boolean {
  return e instanceof CallDeadlinePassed || (e instanceof Error && isRecoverableError(castGrpcError(e)));
}

type FaultHandling = NonNullable<IOptions['faultHandling']>;
type HostPolicy = ReturnType<NonNullable<FaultHandling['host']>>;
type PolicyContext = Parameters<Parameters<HostPolicy['execute']>[0]>[0];
const noEvent = () => ({ dispose: () => undefined });

/**
 * etcd3's default policies open a circuit for 5 s after three failures (a restarted etcd would
 * look down for longer than it is) and retry three times past our deadline. Instead: each call
 * is tried once per endpoint, the next one after a connection failure, all under one deadline.
 */
function faultHandling(endpoints: number): FaultHandling {
  const context = (): PolicyContext => ({ signal: new AbortController().signal }) as PolicyContext;
  const policy = (attempts: number) =>
    ({
      onSuccess: noEvent,
      onFailure: noEvent,
      execute: async <T>(fn: (c: PolicyContext) => PromiseLike<T> | T): Promise<T> => {
        for (let attempt = 1; ; attempt++) {
          try {
            return await fn(context());
          } catch (e) {
            if (attempt >= attempts || !(e instanceof Error) || !isRecoverableError(e)) throw e;
          }
        }
      },
    }) as unknown as HostPolicy;
  return { host: () => policy(1), global: policy(Math.max(1, endpoints)) };
}

interface CallOptions {
  readonly deadline: Date;
}

/** The exact key, or every key under a prefix, as etcd's [key, range_end). */
interface KeyRange {
  readonly key: Buffer;
  readonly rangeEnd?: Buffer;
}

function prefixRange(prefix: string): KeyRange {
  const range = Range.prefix(prefix);
  return { key: range.start, rangeEnd: range.end };
}

export class EtcdKv {
  private readonly client: Etcd3;
  private readonly endpoints: readonly string[];
  private readonly timeoutMs: number;
  private readonly onReachability: ((reachable: boolean, why: string) => void) | undefined;
  private reachable = true;
  private probeTimer: NodeJS.Timeout | undefined;
  private probeDelay = BACKOFF_FIRST_MS;
  private closed = false;
  private readonly watches = new Set<RangeWatch>();
  private readonly leases = new Set<KeptLease>();
  private readonly campaigns = new Set<Campaign>();

  private constructor(conn: EtcdConnection, opts: EtcdKvOptions) {
    if (conn.endpoints.length === 0) throw new Error('etcd connection: no endpoints');
    this.endpoints = [...conn.endpoints];
    this.timeoutMs = opts.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    this.onReachability = opts.onReachability;
    const scheme = conn.tls ? 'https' : 'http';
    this.client = new Etcd3({
      hosts: this.endpoints.map((e) => `${scheme}://${e}`),
      credentials: conn.tls
        ? {
            rootCertificate: readFileSync(conn.tls.cacert),
            ...(conn.tls.key ? { privateKey: readFileSync(conn.tls.key) } : {}),
            ...(conn.tls.cert ? { certChain: readFileSync(conn.tls.cert) } : {}),
          }
        : undefined,
      faultHandling: faultHandling(this.endpoints.length),
      grpcOptions: {
        // A silent peer (a partition, a stopped VM) is noticed on open streams, within etcd's minimum ping interval.
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': 5_000,
        'grpc.initial_reconnect_backoff_ms': BACKOFF_FIRST_MS,
        'grpc.max_reconnect_backoff_ms': BACKOFF_LAST_MS,
      },
    });
  }

  static connect(conn: EtcdConnection, opts: EtcdKvOptions = {}): EtcdKv {
    return new EtcdKv(conn, opts);
  }

  async get(key: string): Promise<KeyValue | undefined> {
    const res = await this.call(`get ${key}`, (o) => this.client.kv.range({ key: Buffer.from(key) }, o));
    return res.kvs.length > 0 ? toKeyValue(res.kvs[0]) : undefined;
  }

  list(prefix: string): Promise<{ kvs: KeyValue[]; revision: number }> {
    return this.rangeNow(prefixRange(prefix), `list ${prefix}`);
  }

  async put(key: string, value: string, lease?: EtcdLease): Promise<number> {
    const res = await this.call(`put ${key}`, (o) => this.client.kv.put({ key: Buffer.from(key), value: Buffer.from(value), lease: lease?.id }, o));
    return Number(res.header.revision);
  }

  async delete(key: string): Promise<boolean> {
    const res = await this.call(`delete ${key}`, (o) => this.client.kv.deleteRange({ key: Buffer.from(key) }, o));
    return Number(res.deleted) > 0;
  }

  async deletePrefix(prefix: string): Promise<number> {
    const range = prefixRange(prefix);
    const res = await this.call(`delete prefix ${prefix}`, (o) => this.client.kv.deleteRange({ key: range.key, range_end: range.rangeEnd }, o));
    return Number(res.deleted);
  }

  /** One etcd transaction: commits `puts` and `deletes` together iff every `absent` key does not exist and every `unchanged` key still has that modRevision (0 = must not exist). */
  async transact(t: {
    absent?: readonly string[];
    unchanged?: readonly { key: string; modRevision: number }[];
    puts?: readonly { key: string; value: string; lease?: EtcdLease }[];
    deletes?: readonly string[];
  }): Promise<boolean> {
    const mustNotExist = (key: string): ICompare => ({ key: Buffer.from(key), target: CompareTarget.Create, result: CompareResult.Equal, create_revision: 0 });
    const compare: ICompare[] = [
      ...(t.absent ?? []).map(mustNotExist),
      ...(t.unchanged ?? []).map((u) =>
        u.modRevision === 0 ? mustNotExist(u.key) : { key: Buffer.from(u.key), target: CompareTarget.Mod, result: CompareResult.Equal, mod_revision: u.modRevision },
      ),
    ];
    const success: IRequestOp[] = [
      ...(t.puts ?? []).map((p) => ({ request_put: { key: Buffer.from(p.key), value: Buffer.from(p.value), lease: p.lease?.id } })),
      ...(t.deletes ?? []).map((key) => ({ request_delete_range: { key: Buffer.from(key) } })),
    ];
    const res = await this.call('transaction', (o) => this.client.kv.txn({ compare, success, failure: [] }, o));
    return res.succeeded;
  }

  /** Grants a lease and keeps it alive every ttl/3 s; `onLost` once when etcd says it is gone or it could not be renewed before it would have expired. */
  async grantLease(ttlSeconds: number, onLost: (why: string) => void): Promise<EtcdLease> {
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) throw new RangeError(`lease TTL must be a whole number of seconds >= 1, got ${ttlSeconds}`);
    const sentAt = Date.now();
    const res = await this.call('grant lease', (o) => this.client.leaseClient.leaseGrant({ TTL: ttlSeconds }, o));
    const lease = new KeptLease(this, String(res.ID), ttlSeconds, sentAt + Number(res.TTL) * 1000, onLost);
    this.leases.add(lease);
    return lease;
  }

  /** Lists the prefix (onSnapshot), then watches from the next revision; resumes after a disconnection from the last revision seen; if etcd compacted past it, lists again (onSnapshot). Returns stop(). */
  async watchPrefix(prefix: string, handlers: WatchHandlers): Promise<() => Promise<void>> {
    return this.watchRange(prefixRange(prefix), handlers);
  }

  /** Leader election under `key`: the leader's lease holds `key` = candidate. onLeader(true) when this candidate leads, onLeader(false) when it stopped leading (lease lost, the key taken away, or stop()); it campaigns again after a loss. stop() resigns. */
  async campaign(key: string, candidate: string, ttlSeconds: number, onLeader: (leading: boolean) => void): Promise<() => Promise<void>> {
    const campaign = new Campaign(this, key, candidate, ttlSeconds, onLeader);
    this.campaigns.add(campaign);
    try {
      await campaign.start();
    } catch (e) {
      this.campaigns.delete(campaign);
      await campaign.stop().catch(() => undefined);
      throw e;
    }
    return async () => {
      this.campaigns.delete(campaign);
      await campaign.stop();
    };
  }

  /** Who leads under `key` now, or undefined. */
  async leader(key: string): Promise<string | undefined> {
    return (await this.get(key))?.value;
  }

  /** Stops watches and campaigns (resigning), stops keeping leases alive (they expire after their TTL) and closes the connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.all([...this.campaigns].map((c) => c.stop().catch(() => undefined)));
    await Promise.all([...this.watches].map((w) => w.stop()));
    for (const lease of this.leases) lease.release();
    this.closed = true;
    clearTimeout(this.probeTimer);
    this.client.close();
  }

  // ---- for the watch, lease and campaign machinery below ----

  /** Runs one etcd call under the deadline; a failure to reach etcd becomes StoreUnreachable and is reported. */
  async call<T>(what: string, fn: (o: CallOptions) => Promise<T>): Promise<T> {
    if (this.closed) throw new Error(`etcd client is closed (${what})`);
    let backstop: NodeJS.Timeout | undefined;
    try {
      const result = await Promise.race([
        fn({ deadline: new Date(Date.now() + this.timeoutMs) }),
        // gRPC honours the deadline; this is for a call stuck before it reaches gRPC.
        new Promise<never>((_, reject) => {
          backstop = setTimeout(() => reject(new CallDeadlinePassed(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs + 50);
        }),
      ]);
      this.sawReachable();
      return result;
    } catch (e) {
      if (!unreachableError(e)) throw e;
      const why = `${what}: ${messageOf(e)}`;
      this.sawUnreachable(why);
      throw new StoreUnreachable(this.endpoints, why);
    } finally {
      clearTimeout(backstop);
    }
  }

  async rangeNow(range: KeyRange, what: string): Promise<{ kvs: KeyValue[]; revision: number }> {
    const res = await this.call(what, (o) => this.client.kv.range({ key: range.key, range_end: range.rangeEnd }, o));
    return { kvs: res.kvs.map(toKeyValue), revision: Number(res.header.revision) };
  }

  async watchRange(range: KeyRange, handlers: WatchHandlers): Promise<() => Promise<void>> {
    const watch = new RangeWatch(this, range, handlers);
    this.watches.add(watch);
    try {
      await watch.start();
    } catch (e) {
      this.watches.delete(watch);
      await watch.stop();
      throw e;
    }
    return async () => {
      this.watches.delete(watch);
      await watch.stop();
    };
  }

  openWatchStream(): Promise<IDuplexStream<IWatchRequest, IWatchResponse>> {
    return this.client.watchClient.watch();
  }

  /** One keepalive of lease `id`; resolves to the TTL etcd gave it (0 when etcd no longer has it). */
  keepAliveOnce(id: string, timeoutMs: number): Promise<number> {
    return this.call(`keep lease ${id} alive`, async () => {
      const stream = await this.client.leaseClient.leaseKeepAlive({ deadline: new Date(Date.now() + Math.min(timeoutMs, this.timeoutMs)) });
      return new Promise<number>((resolve, reject) => {
        stream.on('data', (res) => {
          resolve(Number(res.TTL));
          stream.end();
        });
        stream.on('error', (e) => reject(castGrpcError(e)));
        stream.write({ ID: id });
      });
    });
  }

  async revokeLease(lease: KeptLease): Promise<void> {
    this.leases.delete(lease);
    try {
      await this.call(`revoke lease ${lease.id}`, (o) => this.client.leaseClient.leaseRevoke({ ID: lease.id }, o));
    } catch (e) {
      if (!(e instanceof EtcdLeaseInvalidError)) throw e; // already expired: what revoking wanted
    }
  }

  forgetLease(lease: KeptLease): void {
    this.leases.delete(lease);
  }

  /** Takes `key` for `value` under `lease` iff no one has it. */
  async createIfAbsent(key: string, value: string, lease: EtcdLease): Promise<boolean> {
    return this.transact({ absent: [key], puts: [{ key, value, lease }] });
  }

  private sawReachable(): void {
    if (this.reachable) return;
    this.reachable = true;
    this.probeDelay = BACKOFF_FIRST_MS;
    clearTimeout(this.probeTimer);
    this.probeTimer = undefined;
    const report = this.onReachability;
    if (report) deliver(() => report(true, 'a call succeeded'));
  }

  private sawUnreachable(why: string): void {
    if (!this.reachable) return;
    this.reachable = false;
    const report = this.onReachability;
    if (report) deliver(() => report(false, why));
    this.scheduleProbe();
  }

  /** While etcd is unreachable, a read every 250 ms doubling to 5 s notices it is back even if nobody calls. */
  private scheduleProbe(): void {
    if (this.closed || this.reachable || this.probeTimer) return;
    this.probeTimer = setTimeout(() => {
      this.probeTimer = undefined;
      this.probeDelay = nextBackoff(this.probeDelay);
      this.call('probe', (o) => this.client.kv.range({ key: PROBE_KEY, count_only: true }, o)).catch(() => this.scheduleProbe());
    }, this.probeDelay);
  }
}

/**
 * A watch of a key range that outlives disconnections: it resumes from the revision after the
 * last one delivered, drops anything at or below it (so nothing twice), and when etcd has
 * compacted that revision away it lists the range again and hands over a snapshot.
 */
class RangeWatch {
  /** Every change up to here has been delivered. */
  private revision = 0;
  private stream: IDuplexStream<IWatchRequest, IWatchResponse> | undefined;
  private needsSnapshot = true;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private backoffMs = BACKOFF_FIRST_MS;

  constructor(
    private readonly kv: EtcdKv,
    private readonly range: KeyRange,
    private readonly handlers: WatchHandlers,
  ) {}

  async start(): Promise<void> {
    await this.snapshot();
    await this.open();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.drop();
  }

  private async snapshot(): Promise<void> {
    const { kvs, revision } = await this.kv.rangeNow(this.range, `list ${this.range.key.toString()}`);
    this.needsSnapshot = false;
    this.revision = revision;
    if (!this.stopped) deliver(() => this.handlers.onSnapshot(kvs, revision));
  }

  private async open(): Promise<void> {
    if (this.stopped) return;
    const stream = await this.kv.openWatchStream();
    if (this.stopped) return closeStream(stream);
    this.stream = stream;
    stream.on('data', (res) => this.onResponse(stream, res));
    stream.on('error', () => this.onBroken(stream));
    stream.on('end', () => this.onBroken(stream));
    stream.write({ create_request: { key: this.range.key, range_end: this.range.rangeEnd, start_revision: this.revision + 1, progress_notify: true } });
  }

  private onResponse(stream: IDuplexStream<IWatchRequest, IWatchResponse>, res: IWatchResponse): void {
    if (stream !== this.stream || this.stopped) return;
    if (Number(res.compact_revision) > 0) {
      // etcd no longer has the history after our revision: start over from a listing.
      this.needsSnapshot = true;
      return this.onBroken(stream, true);
    }
    // Canceled for another reason (etcd shutting down, a lost leader): resume like any break.
    if (res.canceled) return this.onBroken(stream);
    if (res.created) {
      this.backoffMs = BACKOFF_FIRST_MS;
      return;
    }
    if (res.events.length === 0) {
      // A progress notification: every change up to the header's revision has been sent.
      this.revision = Math.max(this.revision, Number(res.header.revision));
      return;
    }
    const events = eventsAfter(res, this.revision);
    if (events.length === 0) return;
    const last = events[events.length - 1];
    this.revision = last.type === 'put' ? last.kv.modRevision : last.modRevision;
    const revision = this.revision;
    deliver(() => this.handlers.onEvents(events, revision));
  }

  private onBroken(stream: IDuplexStream<IWatchRequest, IWatchResponse>, now = false): void {
    if (stream !== this.stream || this.stopped) return;
    this.drop();
    this.retry(now ? 0 : undefined);
  }

  private retry(delayMs = this.backoffMs): void {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    this.backoffMs = nextBackoff(this.backoffMs);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.resume().catch(() => this.retry());
    }, delayMs);
  }

  private async resume(): Promise<void> {
    if (this.needsSnapshot) await this.snapshot();
    await this.open();
  }

  private drop(): void {
    const stream = this.stream;
    this.stream = undefined;
    if (stream) closeStream(stream);
  }
}

/** Half-closes before cancelling: etcd3 resets the whole connection on an error from a stream still writable. */
function closeStream(stream: IDuplexStream<IWatchRequest, IWatchResponse>): void {
  stream.on('error', () => undefined);
  stream.end();
  stream.cancel();
}

/** A granted lease, renewed every ttl/3 s until revoked, released or lost. */
class KeptLease implements EtcdLease {
  private renewTimer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private done = false;
  private lastFailure = 'no keepalive answered';

  constructor(
    private readonly kv: EtcdKv,
    readonly id: string,
    readonly ttlSeconds: number,
    expiresAt: number,
    private readonly onLost: (why: string) => void,
  ) {
    this.expireAt(expiresAt);
    this.renewIn(this.intervalMs);
  }

  private get intervalMs(): number {
    return (this.ttlSeconds * 1000) / 3;
  }

  async revoke(): Promise<void> {
    this.finish();
    await this.kv.revokeLease(this);
  }

  /** Stops renewing; etcd expires it after its TTL. */
  release(): void {
    this.finish();
    this.kv.forgetLease(this);
  }

  private finish(): void {
    this.done = true;
    clearTimeout(this.renewTimer);
    clearTimeout(this.expiryTimer);
  }

  private lose(why: string): void {
    if (this.done) return;
    this.release();
    deliver(() => this.onLost(why));
  }

  private expireAt(at: number): void {
    clearTimeout(this.expiryTimer);
    this.expiryTimer = setTimeout(
      () => this.lose(`lease ${this.id} could not be renewed before it would have expired (${this.lastFailure})`),
      Math.max(0, at - Date.now()),
    );
  }

  private renewIn(ms: number): void {
    if (this.done) return;
    this.renewTimer = setTimeout(() => void this.renew(), ms);
  }

  private async renew(): Promise<void> {
    const sentAt = Date.now();
    try {
      const ttl = await this.kv.keepAliveOnce(this.id, this.intervalMs);
      if (this.done) return;
      if (ttl <= 0) return this.lose(`etcd says lease ${this.id} is gone (expired or revoked)`);
      this.expireAt(sentAt + ttl * 1000);
      this.renewIn(this.intervalMs);
    } catch (e) {
      this.lastFailure = messageOf(e);
      this.renewIn(Math.min(this.intervalMs, KEEPALIVE_RETRY_MS));
    }
  }
}

/**
 * One candidate's campaign: the leader is whoever created `key` (holding its candidate name)
 * under its lease. Losers watch the key and try again when it goes; a candidate whose lease
 * is lost stops leading, takes a new lease and campaigns again.
 */
class Campaign {
  private leading = false;
  private stopped = false;
  private lease: EtcdLease | undefined;
  private stopWatch: (() => Promise<void>) | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryMs = BACKOFF_FIRST_MS;
  private acquiring = false;

  constructor(
    private readonly kv: EtcdKv,
    private readonly key: string,
    private readonly candidate: string,
    private readonly ttlSeconds: number,
    private readonly onLeader: (leading: boolean) => void,
  ) {}

  async start(): Promise<void> {
    this.lease = await this.newLease();
    this.stopWatch = await this.kv.watchRange({ key: Buffer.from(this.key) }, {
      onSnapshot: (kvs) => this.consider(kvs[0]),
      onEvents: (events) => {
        const last = events[events.length - 1];
        this.consider(last.type === 'put' ? last.kv : undefined);
      },
    });
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.retryTimer);
    await this.stopWatch?.();
    this.setLeading(false);
    // Revoking the lease deletes the key: the next candidate's watch sees it go.
    await this.lease?.revoke();
  }

  private async newLease(): Promise<EtcdLease> {
    // Bound to its own lease: a late onLost of an old lease must not discard the current one.
    let mine: EtcdLease | undefined;
    mine = await this.kv.grantLease(this.ttlSeconds, () => this.leaseLost(mine));
    return mine;
  }

  private leaseLost(old: EtcdLease | undefined): void {
    if (this.stopped || old === undefined || old !== this.lease) return;
    this.lease = undefined;
    this.setLeading(false);
    // If etcd still has it (it refreshes leases on restart), our stale key would block everyone for a TTL.
    old.revoke().catch(() => undefined);
    this.again();
  }

  /** Decides from what `key` holds now. */
  private consider(current: KeyValue | undefined): void {
    if (this.stopped) return;
    if (current === undefined) {
      this.setLeading(false);
      void this.acquire();
      return;
    }
    this.setLeading(this.lease !== undefined && current.value === this.candidate && current.lease === this.lease.id);
  }

  private async acquire(): Promise<void> {
    if (this.acquiring || this.stopped) return;
    this.acquiring = true;
    try {
      if (!this.lease) this.lease = await this.newLease();
      if (await this.kv.createIfAbsent(this.key, this.candidate, this.lease)) this.setLeading(true);
      this.retryMs = BACKOFF_FIRST_MS;
    } catch (e) {
      // etcd dropped the lease before our keepalive noticed: the same as losing it.
      if (e instanceof EtcdLeaseInvalidError) this.leaseLost(this.lease);
      else this.again();
    } finally {
      this.acquiring = false;
    }
  }

  /** Looks at the key again later (after a failure, or with a new lease). */
  private again(): void {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      this.kv.get(this.key).then(
        (current) => this.consider(current),
        () => this.again(),
      );
    }, this.retryMs);
    this.retryMs = nextBackoff(this.retryMs);
  }

  private setLeading(leading: boolean): void {
    // A transaction still in flight when stop() began must not make a resigned candidate lead.
    if (this.leading === leading || (leading && this.stopped)) return;
    this.leading = leading;
    deliver(() => this.onLeader(leading));
  }
}
