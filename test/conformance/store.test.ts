/** One suite for every ClusterStore: embedded (LMDB in a temp dir) and redis (a redis-server this suite starts). */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { silentLogger } from '../../src/shared/logger.js';
import { ClosedError } from '../../src/shared/errors.js';
import { EmbeddedStore } from '../../src/store/embedded.js';
import { RedisStore } from '../../src/store/redis.js';
import type { ClusterStore } from '../../src/store/store.js';
import { startRedis, tempDir } from '../helpers/processes.js';
import { spec } from '../helpers/specs.js';

interface StoreCase {
  name: string;
  setup: () => Promise<{ open: () => Promise<ClusterStore>; teardown: () => Promise<void> }>;
}

const cases: StoreCase[] = [
  {
    name: 'embedded',
    setup: () => {
      const dir = tempDir('baton-store-');
      return Promise.resolve({
        open: () => Promise.resolve(EmbeddedStore.open({ dataDir: dir })),
        teardown: () => Promise.resolve(rmSync(dir, { recursive: true, force: true })),
      });
    },
  },
  {
    name: 'redis',
    setup: async () => {
      const redis = await startRedis();
      const prefix = `test-${process.pid}-${Date.now()}:`;
      return {
        open: () =>
          RedisStore.connect({ url: redis.url, keyPrefix: prefix, logger: silentLogger() }),
        teardown: () => redis.stop(),
      };
    },
  },
];

const worker = (id: string) => ({
  id,
  host: '127.0.0.1',
  rpcPort: 10010,
  cpuCapacityMilli: 2000,
  memoryCapacityMib: 4096,
  runtime: 'process',
});
const dataPlane = (id: string) => ({ id, host: '127.0.0.1', rpcPort: 8081, proxyPort: 8080 });

for (const c of cases) {
  describe(`ClusterStore conformance: ${c.name}`, () => {
    let env: Awaited<ReturnType<StoreCase['setup']>>;
    let store: ClusterStore;
    before(async () => {
      env = await c.setup();
      store = await env.open();
    });
    after(async () => {
      await store.close();
      await env.teardown();
    });

    it('puts, gets, lists and deletes functions', async () => {
      const f = spec({ name: 'store-fn', image: 'trace', maxScale: 3, env: { A: '1' } });
      assert.equal(await store.getFunction('store-fn'), undefined);
      await store.putFunction(f);
      assert.deepEqual(await store.getFunction('store-fn'), f);
      assert.deepEqual(
        (await store.listFunctions()).map((x) => x.name),
        ['store-fn'],
      );
      assert.equal(await store.deleteFunction('store-fn'), true);
      assert.equal(await store.deleteFunction('store-fn'), false);
      assert.deepEqual(await store.listFunctions(), []);
    });

    it('overwrites on put', async () => {
      await store.putFunction(spec({ name: 'over', image: 'a' }));
      await store.putFunction(spec({ name: 'over', image: 'b' }));
      assert.equal((await store.getFunction('over'))?.image, 'b');
      await store.deleteFunction('over');
    });

    it('keeps workers and data planes', async () => {
      await store.putWorker(worker('w1'));
      await store.putWorker(worker('w2'));
      await store.putDataPlane(dataPlane('dp1'));
      assert.deepEqual((await store.listWorkers()).map((w) => w.id).sort(), ['w1', 'w2']);
      assert.deepEqual(await store.listDataPlanes(), [dataPlane('dp1')]);
      assert.equal(await store.deleteWorker('w1'), true);
      assert.equal(await store.deleteWorker('w1'), false);
      assert.equal(await store.deleteDataPlane('dp1'), true);
      assert.deepEqual(
        (await store.listWorkers()).map((w) => w.id),
        ['w2'],
      );
      await store.deleteWorker('w2');
    });

    it('takes 500 concurrent writes', async () => {
      await Promise.all(
        Array.from({ length: 500 }, (_, i) =>
          store.putFunction(spec({ name: `bulk-${i}`, image: 'empty' })),
        ),
      );
      assert.equal((await store.listFunctions()).length, 500);
      await Promise.all(Array.from({ length: 500 }, (_, i) => store.deleteFunction(`bulk-${i}`)));
      assert.equal((await store.listFunctions()).length, 0);
    });

    it('keeps what was written across close and reopen', async () => {
      await store.putFunction(spec({ name: 'durable', image: 'hello' }));
      await store.putWorker(worker('wd'));
      await store.close();
      await store.close(); // idempotent
      await assert.rejects(store.listFunctions(), ClosedError);
      store = await env.open();
      assert.equal((await store.getFunction('durable'))?.image, 'hello');
      assert.deepEqual(
        (await store.listWorkers()).map((w) => w.id),
        ['wd'],
      );
      await store.deleteFunction('durable');
      await store.deleteWorker('wd');
    });
  });
}

describe('RedisStore durability settings', () => {
  it('turns on AOF with fsync always when the server runs without it', async () => {
    const redis = await startRedis();
    try {
      const store = await RedisStore.connect({ url: redis.url, logger: silentLogger() });
      const { Redis } = await import('ioredis');
      const probe = new Redis(redis.url);
      assert.deepEqual(await probe.config('GET', 'appendonly'), ['appendonly', 'yes']);
      assert.deepEqual(await probe.config('GET', 'appendfsync'), ['appendfsync', 'always']);
      probe.disconnect();
      await store.close();
    } finally {
      await redis.stop();
    }
  });

  it('fails with a clear error when redis is not reachable', async () => {
    await assert.rejects(
      RedisStore.connect({
        url: 'redis://127.0.0.1:1',
        logger: silentLogger(),
        connectTimeoutMs: 500,
      }),
      /cannot use redis at redis:\/\/127\.0\.0\.1:1/,
    );
  });
});
