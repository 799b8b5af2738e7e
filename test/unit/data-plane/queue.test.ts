import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { WaitQueue } from '../../../src/data-plane/queue.js';

describe('WaitQueue', () => {
  it('is FIFO', () => {
    const q = new WaitQueue<string>();
    q.push('a', 1);
    q.push('b', 2);
    q.push('c', 3);
    assert.equal(q.length, 3);
    assert.deepEqual([q.shift(), q.shift(), q.shift(), q.shift()], ['a', 'b', 'c', undefined]);
    assert.equal(q.length, 0);
  });

  it('removes a waiter from anywhere, once', () => {
    const q = new WaitQueue<string>();
    q.push('a', 1);
    const b = q.push('b', 2);
    q.push('c', 3);
    assert.equal(q.remove(b), true);
    assert.equal(q.remove(b), false);
    assert.deepEqual(q.drain(), ['a', 'c']);
  });

  it('removes head and tail and stays consistent', () => {
    const q = new WaitQueue<number>();
    const a = q.push(1, 0);
    const c = q.push(3, 0);
    assert.equal(q.remove(a), true);
    assert.equal(q.remove(c), true);
    assert.equal(q.length, 0);
    assert.equal(q.peek(), undefined);
    q.push(4, 0);
    assert.deepEqual(q.drain(), [4]);
  });

  it('keeps the enqueue time, and unshift puts a waiter back at the head', () => {
    const q = new WaitQueue<string>();
    q.push('late', 10);
    q.unshift('early', 5);
    assert.equal(q.peek()?.enqueuedAt, 5);
    assert.deepEqual(q.drain(), ['early', 'late']);
  });

  it('does not count a removed waiter after shift', () => {
    const q = new WaitQueue<string>();
    const a = q.push('a', 0);
    assert.equal(q.shift(), 'a');
    assert.equal(q.remove(a), false);
    assert.equal(q.length, 0);
  });
});
