import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { detectBubblewrap } from '../../../src/worker/runtimes/process/isolation/bubblewrap.js';

/** Running and not a zombie waiting for init. */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

test('a sandbox whose worker is killed mid-start does not outlive it', async (t) => {
  // A bwrap stuck in its setup (what a worker killed at that moment left
  // behind): it answers the start-up checks, then waits, with no parent-death
  // signal of its own.
  const dir = mkdtempSync(join(tmpdir(), 'baton-bwrap-'));
  const fake = join(dir, 'bwrap');
  writeFileSync(
    fake,
    [
      '#!/bin/sh',
      'if [ "$1" = --version ]; then echo "bubblewrap 0.0 (stuck)"; exit 0; fi',
      'for a; do last=$a; done',
      '[ "$last" = /bin/true ] && exit 0',
      'exec sleep 30',
      '',
    ].join('\n'),
  );
  chmodSync(fake, 0o755);
  let stuck = 0;
  t.after(() => {
    if (stuck > 0 && running(stuck)) process.kill(stuck, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  const bwrap = detectBubblewrap(fake);
  if (typeof bwrap === 'string') assert.fail(bwrap);
  const { command, args } = bwrap.wrap('/bin/sh', ['-c', 'exit'], []);
  // The worker: a shell that starts the sandbox and says its pid.
  const worker = spawn('sh', ['-c', '"$@" & echo $!; wait', 'worker', command, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  stuck = Number(
    await new Promise<string>((resolve) =>
      worker.stdout.once('data', (d: Buffer) => resolve(String(d))),
    ),
  );
  assert.ok(stuck > 0 && running(stuck));
  worker.kill('SIGKILL');
  const deadline = Date.now() + 5_000;
  while (running(stuck) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.equal(running(stuck), false, 'the stuck bwrap died with its worker');
});
