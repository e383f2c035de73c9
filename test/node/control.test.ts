import test from 'ava';
import { createConnection } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { callControl, serveControl } from '../../src/node/control.js';

test('requests are answered; unknown ops, bad JSON and thrown handlers get error answers', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pw-control-'));
  const path = join(dir, 'node.sock');
  const server = await serveControl(path, {
    status: () => ({ up: true }),
    echo: (args) => args,
    boom: () => {
      throw new Error('kaput');
    },
  });
  try {
    t.deepEqual(await callControl(path, 'status'), { up: true });
    t.deepEqual(await callControl(path, 'echo', { a: 1 }), { a: 1 });
    await t.throwsAsync(callControl(path, 'nope'), { message: 'unknown op "nope"' });
    await t.throwsAsync(callControl(path, 'boom'), { message: 'kaput' });
    await t.throwsAsync(callControl(path, 'toString'), { message: 'unknown op "toString"' });
    const raw = await new Promise<string>((resolve) => {
      const s = createConnection(path, () => s.write('not json\n'));
      s.setEncoding('utf8');
      s.on('data', (d: string) => {
        resolve(d);
        s.end();
      });
    });
    t.deepEqual(JSON.parse(raw), { id: null, ok: false, error: 'request is not JSON' });
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a missing socket is a clear error, not a hang', async (t) => {
  await t.throwsAsync(callControl('/nonexistent/pw.sock', 'status', {}, 500), { message: /ENOENT/ });
});
