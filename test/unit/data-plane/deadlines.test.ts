/**
 * The data plane's shared execution time-outs (deadlines.ts), on node:test's
 * mocked clock: each entry expires at its own deadline, in any order of
 * adding; a deleted one never does; an expiry may add another. And, in a
 * process of its own, the timer left armed does not keep a process alive.
 */
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Deadlines } from '../../../src/data-plane/deadlines.js';

describe('Deadlines', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 }));
  afterEach(() => mock.timers.reset());

  it('expires each entry at its deadline, a shorter one added later first', () => {
    const d = new Deadlines();
    const fired: string[] = [];
    d.add(300, () => fired.push('300'));
    d.add(100, () => fired.push('100'));
    d.add(200, () => fired.push('200'));
    mock.timers.tick(99);
    assert.deepEqual(fired, []);
    mock.timers.tick(1);
    assert.deepEqual(fired, ['100']);
    mock.timers.tick(100);
    assert.deepEqual(fired, ['100', '200']);
    mock.timers.tick(100);
    assert.deepEqual(fired, ['100', '200', '300']);
    assert.equal(d.size, 0);
  });

  it('never expires a deleted entry, and still expires the ones after it', () => {
    const d = new Deadlines();
    const fired: string[] = [];
    const first = d.add(100, () => fired.push('first'));
    d.add(500, () => fired.push('second'));
    d.delete(first);
    mock.timers.tick(499);
    assert.deepEqual(fired, []);
    mock.timers.tick(1);
    assert.deepEqual(fired, ['second']);
    // Deleting again, or after expiry (a forward settles after its time-out aborted it), changes nothing.
    d.delete(first);
    assert.equal(d.size, 0);
  });

  it('entries due together expire together; one added by an expiry waits its own time', () => {
    const d = new Deadlines();
    const fired: string[] = [];
    d.add(100, () => {
      fired.push('a');
      d.add(50, () => fired.push('c'));
    });
    d.add(100, () => fired.push('b'));
    mock.timers.tick(100);
    assert.deepEqual(fired, ['a', 'b']);
    mock.timers.tick(49);
    assert.deepEqual(fired, ['a', 'b']);
    mock.timers.tick(1);
    assert.deepEqual(fired, ['a', 'b', 'c']);
  });
});

describe('Deadlines in a process of its own', () => {
  it('lets the process exit once its entries are gone, its timer still armed', () => {
    const script = `import('./src/data-plane/deadlines.ts').then(({ Deadlines }) => {
      const d = new Deadlines();
      d.delete(d.add(60_000, () => process.exit(3)));
    });`;
    const run = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], {
      cwd: new URL('../../../', import.meta.url),
      timeout: 30_000,
      encoding: 'utf8',
    });
    assert.equal(run.signal, null, 'the process was still running after 30 s');
    assert.equal(run.status, 0, run.stderr);
  });
});
