import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { revision } from '../../../benchmarks/lib/bench.js';

test('revision names the commit, and marks tracked changes when asked', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'baton-revision-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const git = (...args: string[]) =>
    execFileSync('git', ['-C', dir, ...args], { encoding: 'utf8' }).trim();
  git('init', '-q');
  writeFileSync(join(dir, 'a.txt'), 'one\n');
  git('add', 'a.txt');
  git('-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-qm', 'one');
  const commit = git('rev-parse', '--short', 'HEAD');
  assert.equal(revision(dir, true), commit);
  // An untracked file (a build's output) is not a change to the commit.
  writeFileSync(join(dir, 'b.txt'), 'new\n');
  assert.equal(revision(dir, true), commit);
  writeFileSync(join(dir, 'a.txt'), 'two\n');
  assert.equal(revision(dir, true), `${commit}-dirty`);
  assert.equal(revision(dir), commit, 'not asked: the commit alone');
  assert.equal(revision(join(dir, 'nowhere')), 'checkout');
});
