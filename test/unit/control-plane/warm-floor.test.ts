import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FunctionRecord } from '../../../src/control-plane/cluster-state.js';
import { compileFunctionSpec } from '../../../src/shared/function-spec.js';

describe('a revision kept warm', () => {
  it('keeps its sandboxes until its deadline, and the latest call decides', () => {
    const fn = new FunctionRecord({
      ...compileFunctionSpec({ name: 'f', image: 'x' }),
      name: 'f@2',
    });
    assert.equal(fn.warmFloor(0), 0);
    fn.keepWarm(3, 1000);
    assert.equal(fn.warmFloor(999), 3);
    assert.equal(fn.warmFloor(1000), 0);
    // A second rollout before the first one's grace ends: the first does not cut it short.
    fn.keepWarm(2, 5000);
    assert.equal(fn.warmFloor(2000), 2);
    assert.equal(fn.warmFloor(5000), 0);
  });
});
