/**
 * Drives real clusters for end-to-end tests through the podwire command, as a user would.
 * Each test file gets its own cluster name and state directory; `teardown` runs
 * `podwire down` and then checks that nothing with the cluster's prefix is left.
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** Why kernel tests cannot run here, or undefined when they can. */
export function kernelSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (CAP_NET_ADMIN) to create namespaces and TAPs';
  if (!existsSync('/dev/net/tun')) return 'needs /dev/net/tun';
  const ipOk = spawnSync('ip', ['netns', 'list']).status === 0;
  if (!ipOk) return 'needs iproute2 with network namespace support';
  return undefined;
}

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

export class TestCluster {
  readonly stateRoot: string;
  readonly pcapDir: string;

  constructor(readonly name: string) {
    this.stateRoot = mkdtempSync(join(tmpdir(), `pw-e2e-${name}-`));
    this.pcapDir = join(this.stateRoot, 'pcap');
  }

  async podwire(args: string[], timeoutMs = 120_000): Promise<Result> {
    try {
      // Common flags go right after the subcommand: anything after `--` belongs to exec's command.
      const argv = [CLI, args[0], '--name', this.name, '--state-dir', this.stateRoot, ...args.slice(1)];
      const { stdout, stderr } = await run(process.execPath, argv, { timeout: timeoutMs, maxBuffer: 32 << 20 });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  }

  /** `podwire up --detach` with the given YAML; throws with the output when it fails. */
  async up(yaml: string | undefined, extra: string[] = []): Promise<Result> {
    const files: string[] = [];
    if (yaml !== undefined) {
      const file = join(this.stateRoot, 'cluster.yaml');
      writeFileSync(file, yaml);
      files.push('-f', file);
    }
    const r = await this.podwire(['up', ...files, '--detach', ...extra]);
    if (r.code !== 0) throw new Error(`podwire up failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
    return r;
  }

  async exec(pod: string, argv: string[], timeoutMs = 30_000): Promise<Result> {
    return this.podwire(['exec', pod, '--', ...argv], timeoutMs);
  }

  async status(): Promise<StatusJson> {
    const r = await this.podwire(['status', '--json']);
    return JSON.parse(r.stdout) as StatusJson;
  }

  async podIp(prefix: string): Promise<string> {
    const s = await this.status();
    const pod = s.pods.find((p) => p.name.startsWith(prefix));
    if (pod === undefined) throw new Error(`no pod ${prefix}* in ${this.name}`);
    return pod.ip;
  }

  /** Names of the namespaces and processes of this cluster still present. */
  leftovers(): string[] {
    const ns = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
      .split('\n')
      .map((l) => l.split(' ')[0])
      .filter((n) => n.startsWith(`pw-${this.name}-`));
    const procs = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.includes(this.stateRoot) && l.includes('node/main.js'));
    return [...ns, ...procs.map((p) => `process ${p.trim()}`)];
  }

  async teardown(): Promise<void> {
    await this.podwire(['down']);
    rmSync(this.stateRoot, { recursive: true, force: true });
  }
}

export interface StatusJson {
  name: string;
  running: boolean;
  nodes: {
    name: string;
    state: 'up' | 'down';
    pid?: number;
    underlay: string;
    detail?: {
      drops: Record<string, number>;
      counters: Record<string, number>;
      overlay: { udpOffload: boolean; glued?: { sent: number; received: number } };
    };
  }[];
  pods: { namespace: string; name: string; ip: string; node: string; ready: boolean }[];
}
