/** Users of their own for process sandboxes: what they can read, and how a sandbox is started as one. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  SANDBOX_UID_BASE,
  detectSandboxUsers,
  unreadableByOthers,
} from '../../../src/worker/runtimes/process/isolation/users.js';
import { tempDir } from '../../helpers/processes.js';

describe('sandbox users', () => {
  it('names the first path on the way that other users cannot search or read', () => {
    const root = tempDir('baton-users-');
    try {
      const fn = join(root, 'fn');
      mkdirSync(fn);
      writeFileSync(join(fn, 'handler.mjs'), 'export default () => new Response("x");\n');
      chmodSync(root, 0o700);
      assert.match(
        unreadableByOthers([join(fn, 'handler.mjs')]) ?? '',
        /baton-users-.* \(mode 700\) does not let other users search it/,
      );
      chmodSync(root, 0o755);
      chmodSync(join(fn, 'handler.mjs'), 0o600);
      assert.match(
        unreadableByOthers([join(fn, 'handler.mjs')]) ?? '',
        /handler\.mjs \(mode 600\) does not let other users read it/,
      );
      chmodSync(join(fn, 'handler.mjs'), 0o644);
      assert.equal(unreadableByOthers([fn, join(fn, 'handler.mjs')]), undefined);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('gives each sandbox port its own user once, and starts a program as it with no privileges', (t) => {
    const users = detectSandboxUsers(20000, 20001);
    if (typeof users === 'string') return t.skip(users);
    const a = users.acquire();
    const b = users.acquire();
    assert.deepEqual([a, b], [SANDBOX_UID_BASE + 20000, SANDBOX_UID_BASE + 20001]);
    assert.equal(users.acquire(), undefined, 'no more users than ports');
    users.release(a!);
    assert.equal(users.acquire(), a);
    const { command, args } = users.wrap(a!, '/bin/sh', [
      '-c',
      'id -u; id -G; grep -E "^(NoNewPrivs|CapEff)" /proc/self/status',
    ]);
    const run = spawnSync(command, args, { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(
      run.stdout
        .trim()
        .split('\n')
        .map((l) => l.replace(/\s+/g, ' ')),
      [String(a), String(a), 'CapEff: 0000000000000000', 'NoNewPrivs: 1'],
    );
  });
});
