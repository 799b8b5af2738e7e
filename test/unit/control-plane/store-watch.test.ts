/**
 * Writes that may wait for the store (worker and data-plane records): each
 * reaches the store once however many arrive together, the latest per
 * record wins, and what a failing store refused is written once it answers
 * again.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { until as waitUntil } from '../../helpers/until.js';
import { pino } from 'pino';
import { silentLogger } from '../../../src/shared/logger.js';
import { MemoryStore } from '../../../src/store/memory.js';
import { StoreWatch } from '../../../src/control-plane/store-watch.js';

/** The memory store, each write taking a moment, counted, and refused while `down`. */
class SlowStore extends MemoryStore {
  writes = 0;
  down = false;
  async write(key: string, log: string[]): Promise<void> {
    this.writes++;
    await sleep(1);
    if (this.down) throw new Error('store down');
    log.push(key);
  }
  override ping(): Promise<void> {
    return this.down ? Promise.reject(new Error('store down')) : Promise.resolve();
  }
}

const until = (check: () => boolean, what: string) => waitUntil(what, check, 5000, 5);

describe('store watch: deferred writes', () => {
  it('writes each of 1000 records arriving together once', async () => {
    const store = new SlowStore();
    const watch = new StoreWatch(store, silentLogger(), () => Date.now());
    const written: string[] = [];
    for (let i = 0; i < 1000; i++)
      watch.defer(`worker:${i}`, () => store.write(`worker:${i}`, written));
    await until(() => written.length === 1000, 'every record written');
    await sleep(20);
    assert.equal(new Set(written).size, 1000);
    // Every defer used to start a pass over all waiting writes: about n²/2 of them.
    assert.ok(store.writes <= 1000 + 256, `${store.writes} writes for 1000 records`);
  });

  it('keeps what a failing store refused and writes the latest once it answers', async () => {
    const store = new SlowStore();
    const watch = new StoreWatch(store, silentLogger(), () => Date.now());
    const written: string[] = [];
    store.down = true;
    watch.defer('worker:a', () => store.write('a-1', written));
    await sleep(20);
    assert.equal(watch.status.ok, false);
    watch.defer('worker:a', () => store.write('a-2', written));
    watch.defer('worker:b', () => store.write('b-1', written));
    await sleep(20);
    assert.deepEqual(written, []);
    store.down = false;
    await watch.check();
    await until(() => written.length === 2, 'the waiting writes');
    assert.deepEqual(written.sort(), ['a-2', 'b-1']);
    assert.equal(watch.status.ok, true);
  });

  it('on close, waits for the writes deferred so far and takes no more', async () => {
    const store = new SlowStore();
    const logged: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => logged.push(line) });
    const watch = new StoreWatch(store, logger, () => Date.now());
    const written: string[] = [];
    for (let i = 0; i < 600; i++)
      watch.defer(`worker:${i}`, () => store.write(`worker:${i}`, written));
    await watch.close();
    assert.equal(written.length, 600);
    watch.defer('worker:late', () => store.write('late', written));
    // The store closing under a call made meanwhile is no failure to report.
    await watch.call(() => Promise.reject(new Error('store is closed'))).catch(() => undefined);
    await sleep(20);
    assert.equal(written.length, 600);
    assert.deepEqual(logged, []);
    assert.equal(watch.status.ok, true);
  });

  it('on close, gives up waiting for a store that does not answer', async () => {
    const store = new SlowStore();
    const watch = new StoreWatch(store, silentLogger(), () => Date.now());
    watch.defer('worker:a', () => new Promise(() => undefined));
    const t0 = Date.now();
    await watch.close(50);
    assert.ok(Date.now() - t0 < 1000);
  });
});
