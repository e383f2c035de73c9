/**
 * The machine's own tools, by absolute path. Under `npm run`, node_modules/.bin comes first
 * in PATH, and a dependency may install a command of the same name there: @vercel/nft's
 * `nft` (a file tracer) answers `nft -f FILE` with exit status 0 and loads nothing. So the
 * kernel tools are looked up in PATH without node_modules directories, then in the sbin
 * directories a non-login root shell may lack.
 */
import { accessSync, constants, statSync } from 'node:fs';
import * as path from 'node:path';

const SBIN = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

export function systemTool(name: string): string | undefined {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter((d) => d !== '' && !d.split(path.sep).includes('node_modules'));
  for (const dir of [...dirs, ...SBIN]) {
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // Not here.
    }
  }
  return undefined;
}

/** `name`'s absolute path; throws when the machine has none. */
export function requireSystemTool(name: string): string {
  const found = systemTool(name);
  if (found === undefined) throw new Error(`${name} not found outside node_modules`);
  return found;
}
