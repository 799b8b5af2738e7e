/** What the embedded store promises beyond the ClusterStore suite: write order, one opener, an earlier Baton's data dir. */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { open } from 'lmdb';
import { ClassicLevel } from 'classic-level';
import { StoreCorruptError, StoreError } from '../../src/shared/errors.js';
import { EmbeddedStore } from '../../src/store/embedded.js';
import { EMBEDDED_STORE_DIR, LEGACY_EMBEDDED_STORE_DIR } from '../../src/store/keys.js';
import { tempDir } from '../helpers/processes.js';
import { spec } from '../helpers/specs.js';

describe('EmbeddedStore', () => {
  const dirs: string[] = [];
  const dataDir = () => {
    const dir = tempDir('baton-embedded-');
    dirs.push(dir);
    return dir;
  };
  after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('applies writes issued together in the order they were issued', async () => {
    const store = await EmbeddedStore.open({ dataDir: dataDir() });
    try {
      const writes = [
        store.putFunction(spec({ name: 'a', image: 'first' })),
        store.putFunction(spec({ name: 'a', image: 'second' })),
        store.deleteFunction('b'),
        store.putFunction(spec({ name: 'b', image: 'kept' })),
        store.putFunction(spec({ name: 'c', image: 'gone' })),
        store.deleteFunction('c'),
      ];
      const results = await Promise.all(writes);
      assert.deepEqual(results.slice(2), [false, undefined, undefined, true]);
      assert.equal((await store.getFunction('a'))?.image, 'second');
      assert.equal((await store.getFunction('b'))?.image, 'kept');
      assert.equal(await store.getFunction('c'), undefined);
      // Writes issued while a batch is on disk go in the next one, still in order.
      const first = store.putFunction(spec({ name: 'd', image: 'one' }));
      await Promise.resolve();
      const later = [store.deleteFunction('d'), store.deleteFunction('d')];
      await first;
      assert.deepEqual(await Promise.all(later), [true, false]);
    } finally {
      await store.close();
    }
  });

  it('refuses a second opener of the same data dir with a StoreError naming the path', async () => {
    const dir = dataDir();
    const store = await EmbeddedStore.open({ dataDir: dir });
    try {
      await assert.rejects(EmbeddedStore.open({ dataDir: dir }), (err: Error) => {
        assert.ok(err instanceof StoreError);
        assert.match(
          err.message,
          new RegExp(
            `cannot open embedded store at ${join(dir, EMBEDDED_STORE_DIR)}: another process has it open`,
          ),
        );
        return true;
      });
      // The first opener is unharmed.
      await store.putFunction(spec({ name: 'still', image: 'empty' }));
    } finally {
      await store.close();
    }
  });

  it('rejects a record that does not parse with StoreCorruptError', async () => {
    const dir = dataDir();
    const raw = new ClassicLevel<string, string>(join(dir, EMBEDDED_STORE_DIR));
    await raw.put('functions/broken', '{"name": "broken"');
    await raw.put('workers/w1', '{"id": "w1"}');
    await raw.close();
    const store = await EmbeddedStore.open({ dataDir: dir });
    try {
      await assert.rejects(store.getFunction('broken'), StoreCorruptError);
      await assert.rejects(store.listWorkers(), /stored workers record "w1" is invalid/);
    } finally {
      await store.close();
    }
  });

  it('copies no LMDB store that appears after it was first opened, and names one it cannot read', async () => {
    const dir = dataDir();
    await (await EmbeddedStore.open({ dataDir: dir })).close();
    await writeLegacyStore(dir);
    const store = await EmbeddedStore.open({ dataDir: dir });
    try {
      assert.deepEqual(await store.listFunctions(), []);
    } finally {
      await store.close();
    }
    const other = dataDir();
    mkdirSync(join(other, LEGACY_EMBEDDED_STORE_DIR));
    writeFileSync(join(other, LEGACY_EMBEDDED_STORE_DIR, 'data.mdb'), 'not an LMDB file');
    await assert.rejects(EmbeddedStore.open({ dataDir: other }), (err: Error) => {
      assert.ok(err instanceof StoreError);
      assert.match(
        err.message,
        /cannot read the earlier LMDB store at .*\/store: data.mdb is not an LMDB database/,
      );
      return true;
    });
  });

  it("copies an earlier Baton's LMDB store in once, and leaves it in place", async () => {
    const dir = dataDir();
    await writeLegacyStore(dir);

    let store = await EmbeddedStore.open({ dataDir: dir });
    try {
      assert.equal((await store.getFunction('old'))?.image, 'hello');
      assert.deepEqual(
        (await store.listSecrets()).map((s) => s.name),
        ['token'],
      );
      assert.equal(await store.deleteFunction('old'), true);
    } finally {
      await store.close();
    }
    assert.ok(existsSync(join(dir, LEGACY_EMBEDDED_STORE_DIR, 'data.mdb')));
    // Not copied again: what was deleted since stays deleted.
    store = await EmbeddedStore.open({ dataDir: dir });
    try {
      assert.equal(await store.getFunction('old'), undefined);
    } finally {
      await store.close();
    }
  });
});

/** An earlier Baton's embedded store: LMDB in `<data-dir>/store`, a function and a secret. */
async function writeLegacyStore(dir: string): Promise<void> {
  const legacy = open({
    path: join(dir, LEGACY_EMBEDDED_STORE_DIR),
    maxDbs: 8,
    encoding: 'json',
  });
  await legacy
    .openDB({ name: 'functions', encoding: 'json' })
    .put('old', spec({ name: 'old', image: 'hello' }));
  await legacy.openDB({ name: 'secrets', encoding: 'json' }).put('token', {
    name: 'token',
    value: 'c2VjcmV0',
    updatedAt: '2026-01-01T00:00:00.000Z',
  });
  await legacy.close();
}
