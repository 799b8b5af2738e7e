/** How a data plane asks the control plane for functions: shared calls, remembered absence. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { FunctionLookup } from '../../../src/data-plane/function-lookup.js';
import { NEGATIVE_TTL_MS } from '../../../src/rpc/contracts/control-plane.js';

/** A control plane holding `held`; answers after `delayMs`; counts the calls per name. */
function asker(held: string[], delayMs = 0) {
  const calls: string[] = [];
  let failing = false;
  return {
    calls,
    fail(on: boolean) {
      failing = on;
    },
    ask: async (name: string) => {
      calls.push(name);
      await sleep(delayMs);
      if (failing) throw new Error('unreachable');
      return held.includes(name);
    },
  };
}

describe('FunctionLookup', () => {
  it('makes one call per name while it is pending', async () => {
    const a = asker(['f'], 10);
    const l = new FunctionLookup(a.ask);
    const answers = await Promise.all([l.lookup('f'), l.lookup('f'), l.lookup('g')]);
    assert.deepEqual(answers, [true, true, false]);
    assert.deepEqual(a.calls, ['f', 'g']);
    assert.equal(l.absent('f'), false, 'a found name is not remembered here (the table has it)');
    assert.equal(l.absent('g'), true);
  });

  it('remembers an absent name for NEGATIVE_TTL_MS from when it asked', async () => {
    const a = asker([], 50);
    const l = new FunctionLookup(a.ask);
    const asked = performance.now();
    assert.equal(await l.lookup('g'), false);
    assert.equal(l.absent('g'), true);
    await sleep(NEGATIVE_TTL_MS - (performance.now() - asked) + 5);
    assert.equal(l.absent('g'), false);
  });

  it('does not remember a failed call, nor an answer to a call made before forget()', async () => {
    const a = asker([], 20);
    const l = new FunctionLookup(a.ask);
    a.fail(true);
    await assert.rejects(l.lookup('g'), /unreachable/);
    assert.equal(l.absent('g'), false);
    a.fail(false);
    const before = l.lookup('g');
    l.forget();
    assert.equal(await before, false);
    assert.equal(l.absent('g'), false, 'the answer may predate the full view');
    await l.lookup('g');
    assert.equal(l.absent('g'), true);
    l.forget();
    assert.equal(l.absent('g'), false);
  });

  it('forgets the oldest absent name beyond its bound', async () => {
    const l = new FunctionLookup(asker([]).ask, { maxAbsent: 2 });
    for (const name of ['a', 'b', 'c']) await l.lookup(name);
    assert.deepEqual(
      ['a', 'b', 'c'].map((n) => l.absent(n)),
      [false, true, true],
    );
  });

  it('is full for a new name while its bound of names is being looked up', async () => {
    const l = new FunctionLookup(asker([], 20).ask, { maxPending: 2 });
    const calls = [l.lookup('a'), l.lookup('b')];
    assert.equal(l.full('c'), true);
    assert.equal(l.full('a'), false, 'a pending name shares its call');
    await Promise.all(calls);
    assert.equal(l.full('c'), false);
  });
});
