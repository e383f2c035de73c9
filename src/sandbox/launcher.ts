/**
 * The pod sandbox from the node's side: the pod's directory of kubelet-written files, its
 * pause process and the command line of each container's launcher. The namespaces, mounts
 * and credentials are made by podwire-sandbox (src/sandbox/native/sandbox.c); this module
 * only prepares what it reads and starts it.
 *
 * A pod's directory (0700, under the cluster's state directory, which no pod can see):
 *   hosts, resolv.conf, hostname   bound at /etc/hosts, /etc/resolv.conf, /etc/hostname
 *   tmp/, shm/                     the pod's /tmp and /dev/shm, shared by its containers
 *   volumes/NAME/                  each volume (an emptyDir, or a ConfigMap's or Secret's files)
 *   scratch/                       where each container's root is assembled, in its own namespace
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, promises as fs } from 'node:fs';
import { dirname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Built by the package's install script beside the I/O addon (binding.gyp). */
export const SANDBOX_BINARY = fileURLToPath(new URL('../../../build/Release/podwire-sandbox', import.meta.url));

/** Why pods cannot get their sandbox on this machine, or undefined when they can. */
export function sandboxUnavailable(binary = SANDBOX_BINARY): string | undefined {
  if (process.env.PODWIRE_NO_SANDBOX === '1') return 'PODWIRE_NO_SANDBOX=1';
  try {
    accessSync(binary, constants.X_OK);
  } catch {
    return `${binary} was not built (run npm install, which builds it with node-gyp)`;
  }
  return undefined;
}

export type VolumeContent = { readonly kind: 'emptyDir' } | { readonly kind: 'files'; readonly files: readonly { readonly path: string; readonly data: Buffer; readonly mode: number }[] };

export interface PodFiles {
  readonly hosts: string;
  readonly resolvConf: string;
  readonly hostname: string;
  readonly volumes: ReadonlyMap<string, VolumeContent>;
}

export function volumeDirectory(podDir: string, volume: string): string {
  return join(podDir, 'volumes', volume);
}

/** Writes a pod's directory afresh (a leftover of an earlier run of the pod is removed first). */
export async function preparePodDirectory(dir: string, files: PodFiles): Promise<void> {
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  await fs.chmod(dir, 0o700);
  await fs.writeFile(join(dir, 'hosts'), files.hosts, { mode: 0o644 });
  await fs.writeFile(join(dir, 'resolv.conf'), files.resolvConf, { mode: 0o644 });
  await fs.writeFile(join(dir, 'hostname'), `${files.hostname}\n`, { mode: 0o644 });
  for (const shared of ['tmp', 'shm']) {
    await fs.mkdir(join(dir, shared));
    await fs.chmod(join(dir, shared), 0o1777); // mkdir's mode passes through the umask
  }
  await fs.mkdir(join(dir, 'scratch'), { mode: 0o700 });
  for (const [name, content] of files.volumes) {
    const root = volumeDirectory(dir, name);
    await fs.mkdir(root, { recursive: true });
    if (content.kind === 'emptyDir') {
      await fs.chmod(root, 0o777); // as the kubelet makes an emptyDir: any container user may write
      continue;
    }
    await fs.chmod(root, 0o755);
    for (const file of content.files) {
      const path = normalize(join(root, file.path));
      if (!path.startsWith(root + sep)) throw new Error(`volume ${name}: file path ${JSON.stringify(file.path)} leaves the volume`);
      await fs.mkdir(dirname(path), { recursive: true, mode: 0o755 });
      await fs.writeFile(path, file.data, { mode: file.mode });
      await fs.chmod(path, file.mode);
    }
  }
}

export interface PauseProcess {
  /** The launcher, outside the pod: ending it ends the pod. */
  readonly process: ChildProcess;
  /** The pod's init (PID 1 inside), whose namespaces the containers join. */
  readonly initPid: number;
}

/** Starts the pod's pause: its UTS, IPC and PID namespaces, on its network namespace. */
export function startPause(netnsPath: string, hostname: string, binary = SANDBOX_BINARY): Promise<PauseProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, ['pause', '--netns', netnsPath, '--hostname', hostname], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let out = '';
    let err = '';
    const fail = (why: string) => {
      child.stdout.removeAllListeners();
      reject(new Error(`pause for ${netnsPath}: ${why}${err.trim() !== '' ? `: ${err.trim()}` : ''}`));
    };
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('error', (e) => fail(e.message));
    child.on('exit', (code, signal) => fail(`exited (${signal ?? code}) before the pod's init started`));
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const newline = out.indexOf('\n');
      if (newline < 0) return;
      const pid = Number(out.slice(0, newline));
      child.removeAllListeners('exit');
      child.stdout.removeAllListeners('data');
      child.stdout.resume();
      if (!Number.isInteger(pid) || pid <= 0) {
        child.kill('SIGKILL');
        fail(`printed ${JSON.stringify(out.slice(0, newline))} instead of a pid`);
        return;
      }
      resolve({ process: child, initPid: pid });
    });
  });
}

export interface MountSpec {
  /** A path on the host (in the pod's directory). */
  readonly source: string;
  /** Where it appears inside the container. */
  readonly target: string;
  readonly readOnly: boolean;
}

/** What a container's launcher is told: where the pod is and who the process is. */
export interface ContainerSandbox {
  readonly initPid: number;
  readonly podDir: string;
  readonly mounts: readonly MountSpec[];
  /** Directories covered with an empty read-only tmpfs (host state outside /run and /tmp). */
  readonly hide: readonly string[];
  readonly uid: number;
  readonly gid: number;
  readonly supplementalGroups: readonly number[];
  /** Capability numbers of the bounding set (and, for uid 0, the effective set). */
  readonly capabilities: readonly number[];
  readonly noNewPrivileges: boolean;
  readonly readOnlyRootFilesystem: boolean;
  readonly workingDir?: string;
}

/** The launcher's command line for `argv` in the container. */
export function containerCommand(spec: ContainerSandbox, argv: readonly string[], binary = SANDBOX_BINARY): string[] {
  if (argv.length === 0) throw new Error('a container needs a command');
  const out = [binary, 'run', '--pause', String(spec.initPid), '--pod-dir', spec.podDir];
  for (const m of spec.mounts) out.push('--mount', `${m.source}:${m.target}:${m.readOnly ? 'ro' : 'rw'}`);
  for (const path of spec.hide) out.push('--hide', path);
  out.push('--uid', String(spec.uid), '--gid', String(spec.gid));
  if (spec.supplementalGroups.length > 0) out.push('--groups', spec.supplementalGroups.join(','));
  out.push('--caps', spec.capabilities.length > 0 ? spec.capabilities.join(',') : 'none');
  if (spec.noNewPrivileges) out.push('--no-new-privs');
  if (spec.readOnlyRootFilesystem) out.push('--read-only-root');
  if (spec.workingDir !== undefined) out.push('--workdir', spec.workingDir);
  out.push('--', ...argv);
  return out;
}
