/** waitAtMost: whether a promise settled within the time given, its timer never left behind. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sleep, waitAtMost } from '../../src/shared/time.js';

describe('waitAtMost', () => {
  it('is true when the promise settles first, false when the time runs out', async () => {
    assert.equal(await waitAtMost(Promise.resolve(), 1000), true);
    assert.equal(await waitAtMost(sleep(5), 1000), true);
    assert.equal(await waitAtMost(new Promise(() => undefined), 10), false);
  });

  it('rejects when the promise rejects first', async () => {
    await assert.rejects(waitAtMost(Promise.reject(new Error('boom')), 1000), /boom/);
  });

  it('clears its timer: a long wait that ended early keeps nothing pending', async () => {
    const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    assert.equal(await waitAtMost(Promise.resolve(), 60_000), true);
    const after = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    assert.equal(after, before);
  });
});
