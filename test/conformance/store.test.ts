/** One suite for every ClusterStore: embedded (LevelDB in a temp dir) and redis (a redis-server this suite starts). */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { silentLogger } from '../../src/shared/logger.js';
import {
  ClosedError,
  InvalidConfigError,
  NotLeaderError,
  StoreError,
} from '../../src/shared/errors.js';
import { EmbeddedStore } from '../../src/store/embedded.js';
import { RedisStore } from '../../src/store/redis.js';
import { MemoryStore, memoryBacking } from '../../src/store/memory.js';
import type { ClusterStore } from '../../src/store/store.js';
import { EtcdStore } from '../../src/store/etcd.js';
import { ETCD_MISSING, startEtcd, startRedis, tempDir } from '../helpers/processes.js';
import { spec } from '../helpers/specs.js';
import { until as waitUntil } from '../helpers/until.js';

interface StoreCase {
  name: string;
  skip?: string | false;
  setup: () => Promise<{ open: () => Promise<ClusterStore>; teardown: () => Promise<void> }>;
}

const cases: StoreCase[] = [
  {
    name: 'memory (for tests)',
    setup: () => {
      const backing = memoryBacking();
      return Promise.resolve({
        open: () => Promise.resolve(new MemoryStore(backing)),
        teardown: () => Promise.resolve(),
      });
    },
  },
  {
    name: 'embedded',
    setup: () => {
      const dir = tempDir('baton-store-');
      return Promise.resolve({
        open: () => EmbeddedStore.open({ dataDir: dir }),
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
  {
    name: 'etcd',
    skip: ETCD_MISSING,
    setup: async () => {
      const etcd = await startEtcd();
      return {
        open: () => Promise.resolve(new EtcdStore({ endpoints: [etcd.endpoint] })),
        teardown: () => etcd.stop(),
      };
    },
  },
  {
    name: 'etcd with a warm copy (a replica)',
    skip: ETCD_MISSING,
    setup: async () => {
      const etcd = await startEtcd();
      return {
        open: () => {
          const store = new EtcdStore({ endpoints: [etcd.endpoint] });
          store.startMirror();
          return Promise.resolve(store);
        },
        teardown: () => etcd.stop(),
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
  describe(`ClusterStore conformance: ${c.name}`, { skip: c.skip ?? false }, () => {
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

    it('keeps secrets apart from functions, overwritten on put', async () => {
      const at = new Date(0).toISOString();
      await store.putSecret({ name: 'DB_PASSWORD', value: 'hunter2', updatedAt: at });
      await store.putSecret({ name: 'DB_PASSWORD', value: 'hunter3', updatedAt: at });
      await store.putSecret({ name: 'API_KEY', value: '', updatedAt: at });
      assert.deepEqual((await store.listSecrets()).map((x) => `${x.name}=${x.value}`).sort(), [
        'API_KEY=',
        'DB_PASSWORD=hunter3',
      ]);
      assert.deepEqual(await store.listFunctions(), []);
      assert.equal(await store.deleteSecret('API_KEY'), true);
      assert.equal(await store.deleteSecret('API_KEY'), false);
      assert.equal(await store.deleteSecret('DB_PASSWORD'), true);
      assert.deepEqual(await store.listSecrets(), []);
    });

    it('keeps traffic splits, overwritten on put', async () => {
      await store.putTraffic({ name: 'f', split: [{ revision: 1, weight: 100 }] });
      const split = [
        { revision: 1, weight: 90 },
        { revision: 2, weight: 10 },
      ];
      await store.putTraffic({ name: 'f', split });
      assert.deepEqual(await store.listTraffic(), [{ name: 'f', split }]);
      assert.equal(await store.deleteTraffic('f'), true);
      assert.equal(await store.deleteTraffic('f'), false);
      assert.deepEqual(await store.listTraffic(), []);
    });

    it('keeps asynchronous invocations, overwritten on put', async () => {
      const inv = {
        id: 'i-1',
        function: 'f',
        request: { method: 'POST', path: '/', headers: { a: 'b' }, bodyBase64: 'eA==' },
        state: 'queued' as const,
        attempts: 0,
        acceptedAt: 1,
        notBefore: 1,
      };
      await store.putInvocation(inv);
      await store.putInvocation({ ...inv, state: 'running', attempts: 1, startedAt: 2 });
      assert.deepEqual(await store.listInvocations(), [
        { ...inv, state: 'running', attempts: 1, startedAt: 2 },
      ]);
      assert.equal((await store.getInvocation('i-1'))?.attempts, 1);
      assert.equal(await store.getInvocation('i-2'), undefined);
      assert.equal(await store.deleteInvocation('i-1'), true);
      assert.equal(await store.deleteInvocation('i-1'), false);
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

    it('answers ping while it can be used', async () => {
      await store.ping();
    });

    it('keeps what was written across close and reopen', async () => {
      await store.putFunction(spec({ name: 'durable', image: 'hello' }));
      await store.putWorker(worker('wd'));
      await store.close();
      await store.close(); // idempotent
      await assert.rejects(store.listFunctions(), ClosedError);
      await assert.rejects(store.ping(), ClosedError);
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

describe('RedisStore and its server', () => {
  it('refuses a server without durable writes and leaves its configuration alone', async () => {
    const redis = await startRedis(false);
    try {
      await assert.rejects(
        RedisStore.connect({ url: redis.url, logger: silentLogger() }),
        (err: Error) => {
          assert.ok(err instanceof InvalidConfigError);
          assert.match(
            err.message,
            /runs with appendonly no and appendfsync everysec; .* needs appendonly yes and appendfsync always: set both in redis\.conf/,
          );
          return true;
        },
      );
      assert.equal(await redis.config('appendonly'), 'no', 'its configuration is left alone');
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

  it('fails calls at once with StoreError while the server is down, and works again when it is back', async () => {
    const redis = await startRedis();
    const store = await RedisStore.connect({ url: redis.url, logger: silentLogger() });
    try {
      await store.putFunction(spec({ name: 'before', image: 'hello' }));
      await redis.kill();
      const t0 = Date.now();
      await assert.rejects(store.putFunction(spec({ name: 'during', image: 'hello' })), StoreError);
      await assert.rejects(store.listFunctions(), StoreError);
      await assert.rejects(store.ping(), StoreError);
      assert.ok(Date.now() - t0 < 5000, 'no call waits for the server');
      await redis.restart();
      await until('the store to answer again', () =>
        store.ping().then(
          () => true,
          () => false,
        ),
      );
      await store.putFunction(spec({ name: 'after', image: 'hello' }));
      assert.deepEqual((await store.listFunctions()).map((f) => f.name).sort(), [
        'after',
        'before',
      ]);
    } finally {
      await store.close();
      await redis.stop();
    }
  });

  it('can start while the server is down and is used once it is up', async () => {
    const redis = await startRedis();
    await redis.kill();
    const store = await RedisStore.connect({
      url: redis.url,
      logger: silentLogger(),
      connectTimeoutMs: 500,
      startWhenUnreachable: true,
    });
    try {
      await assert.rejects(store.listFunctions(), StoreError);
      await redis.restart();
      await until('the store to answer', () =>
        store.ping().then(
          () => true,
          () => false,
        ),
      );
      await store.putFunction(spec({ name: 'late', image: 'hello' }));
      assert.equal((await store.getFunction('late'))?.image, 'hello');
    } finally {
      await store.close();
      await redis.stop();
    }
  });
});

describe('EtcdStore fencing', { skip: ETCD_MISSING }, () => {
  it("refuses a deposed leader's writes once its election key is gone, and changes nothing", async () => {
    const etcd = await startEtcd();
    const leader = new EtcdStore({ endpoints: [etcd.endpoint] });
    const other = new EtcdStore({ endpoints: [etcd.endpoint] });
    try {
      const key = `${leader.prefix}leader/test`;
      await leader.client.put(key).value('me');
      const created = (await leader.client.get(key).exec()).kvs[0]!.create_revision;
      leader.fence(key, created);
      await leader.putFunction(spec({ name: 'while-leading', image: 'hello' }));
      assert.equal(await leader.deleteFunction('while-leading'), true);
      await leader.putFunction(spec({ name: 'kept', image: 'hello' }));
      // Deposed: the key is deleted (its lease expired), then made again by someone else.
      await other.client.delete().key(key);
      await other.client.put(key).value('someone else');
      await assert.rejects(
        leader.putFunction(spec({ name: 'late', image: 'hello' })),
        NotLeaderError,
      );
      await assert.rejects(leader.deleteFunction('kept'), NotLeaderError);
      assert.deepEqual(
        (await other.listFunctions()).map((f) => f.name),
        ['kept'],
      );
    } finally {
      await leader.close();
      await other.close();
      await etcd.stop();
    }
  });

  it("a replica's warm copy never lists stale records, and answers lists once it has caught up", async () => {
    const etcd = await startEtcd();
    const replica = new EtcdStore({ endpoints: [etcd.endpoint] });
    const leader = new EtcdStore({ endpoints: [etcd.endpoint] });
    try {
      await leader.putFunction(spec({ name: 'before', image: 'hello' }));
      replica.startMirror();
      const names = async (s: EtcdStore) => (await s.listFunctions()).map((f) => f.name).sort();
      // Each change is listed by the replica right after the leader's write was acknowledged,
      // before its watch can be relied on to have delivered it.
      for (let i = 0; i < 40; i++) {
        if (i % 3 === 2) await leader.deleteFunction(`f${i - 1}`);
        else
          await leader.putFunction(spec({ name: `f${i}`, image: i % 2 === 0 ? 'hello' : 'empty' }));
        assert.deepEqual(await names(replica), await names(leader), `after change ${i}`);
        assert.deepEqual(
          (await replica.listFunctions()).find((f) => f.name === `f${i}`)?.image,
          (await leader.listFunctions()).find((f) => f.name === `f${i}`)?.image,
        );
      }
      await leader.putWorker(worker('w-1'));
      const answered = replica.mirrorCounters!.answered;
      await until('the copy to answer', async () => {
        const workers = await replica.listWorkers();
        return workers.length === 1 && replica.mirrorCounters!.answered > answered;
      });
      assert.deepEqual(await names(replica), await names(leader));
    } finally {
      await replica.close();
      await leader.close();
      await etcd.stop();
    }
  });

  it('fails calls with StoreError while etcd is down', async () => {
    const etcd = await startEtcd();
    const store = new EtcdStore({ endpoints: [etcd.endpoint] });
    try {
      await store.ping();
      await etcd.stop();
      const t0 = Date.now();
      await assert.rejects(store.putFunction(spec({ name: 'x', image: 'hello' })), StoreError);
      await assert.rejects(store.ping(), StoreError);
      assert.ok(Date.now() - t0 < 10_000, 'calls fail within their time-out');
    } finally {
      await store.close();
    }
  });
});

const until = (what: string, check: () => Promise<boolean>, timeoutMs = 15_000) =>
  waitUntil(what, check, timeoutMs, 100);
