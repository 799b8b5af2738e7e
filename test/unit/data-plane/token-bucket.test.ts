import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TokenBucket } from '../../../src/data-plane/h2/token-bucket.js';

describe('TokenBucket', () => {
  it('gives a burst at once, then refills by the time passed, never above the burst', () => {
    const b = new TokenBucket(3, 2, 0);
    assert.deepEqual([b.take(0), b.take(0), b.take(0), b.take(0)], [true, true, true, false]);
    // Half a second at 2 a second: one more.
    assert.deepEqual([b.take(500), b.take(500)], [true, false]);
    // A long pause refills to the burst, not past it.
    assert.deepEqual(
      [b.take(60_000), b.take(60_000), b.take(60_000), b.take(60_000)],
      [true, true, true, false],
    );
  });
});
