/**
 * `podwire ui` and `podwire up --ui`: bad options are usage errors (exit 2) saying what is
 * wrong, before anything listens or starts; a cluster that is not running is said so.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CLI } from '../helpers/cluster.js';

const run = promisify(execFile);
const root = mkdtempSync(join(tmpdir(), 'pw-ui-args-'));
test.after.always(() => rmSync(root, { recursive: true, force: true }));

async function podwire(args: string[]): Promise<{ code: number; stderr: string }> {
  try {
    const { stderr } = await run(process.execPath, [CLI, ...args, '--name', 'pwuiargs', '--state-dir', root], { timeout: 30_000 });
    return { code: 0, stderr };
  } catch (err) {
    const e = err as { code?: number; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stderr: e.stderr ?? '' };
  }
}

const cases: [string[], RegExp][] = [
  [['ui', '--port', '70000'], /podwire ui: --port 70000: a TCP port from 0 \(any free one\) to 65535/],
  [['ui', '--port', 'http'], /podwire ui: --port http: a TCP port/],
  [['ui', '--address', '::1'], /podwire ui: --address ::1: an IPv4 address of this machine/],
  [['ui', 'extra'], /podwire ui: unexpected argument "extra"/],
  [['ui', '--cert', 'x.pem'], /podwire ui: --cert is for --store etcd:\/\/\.\.\./],
  [['ui'], /podwire ui: cluster pwuiargs is not running \(no .*cluster\.json\); start it with podwire up, or name its store with --store/],
  [['up', '--port', '8080'], /podwire up: --port and --address are for the web view: give --ui too/],
  [['up', '--ui', '--detach'], /podwire up: --ui serves the page while up runs in the foreground; with --detach, run podwire ui/],
  [['up', '--ui', '--port=-1'], /podwire up: --port -1: a TCP port/],
];

for (const [args, message] of cases) {
  test(`podwire ${args.join(' ')} is a usage error`, async (t) => {
    const r = await podwire(args);
    t.is(r.code, 2, r.stderr);
    t.regex(r.stderr, message);
  });
}
