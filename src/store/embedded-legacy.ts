/**
 * An earlier Baton kept its embedded store in LMDB (`<data-dir>/store`, one
 * named sub-database per record kind, values as JSON). The first time the
 * LevelDB store is opened in a data dir, the records of such a store are
 * copied in, in one synced batch with a key that says it was done (so a
 * failed copy is tried again at the next start, and a done one never: what
 * was deleted since stays deleted); the old folder is left as it was
 * (delete it once the new store is trusted).
 */
import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { open } from 'lmdb';
import type { ClassicLevel } from 'classic-level';
import { errorMessage } from '../shared/errors.js';
import { LEGACY_EMBEDDED_STORE_DIR, RECORD_KINDS, embeddedKey } from './keys.js';

/** Says that `importLegacyStore` has run on this database (never a record: no kind's range holds it). */
const IMPORTED_KEY = 'meta/legacy-store-imported';

/** Copies an LMDB store's records into `db` unless done before; returns how many it copied. */
export async function importLegacyStore(
  dataDir: string,
  db: ClassicLevel<string, string>,
): Promise<number> {
  if ((await db.get(IMPORTED_KEY)) !== undefined) return 0;
  const path = join(dataDir, LEGACY_EMBEDDED_STORE_DIR);
  const done = { type: 'put' as const, key: IMPORTED_KEY, value: new Date().toISOString() };
  if (!existsSync(join(path, 'data.mdb'))) {
    await db.batch([done], { sync: true });
    return 0;
  }
  let root: ReturnType<typeof open>;
  try {
    // LMDB trusts its file: one that is not an LMDB database crashes the process.
    if (!hasLmdbMagic(join(path, 'data.mdb'))) throw new Error('data.mdb is not an LMDB database');
    root = open({ path, maxDbs: 8, encoding: 'json', readOnly: true });
  } catch (err) {
    throw new Error(`cannot read the earlier LMDB store at ${path}: ${errorMessage(err)}`, {
      cause: err,
    });
  }
  try {
    const puts: { type: 'put'; key: string; value: string }[] = [];
    for (const kind of RECORD_KINDS) {
      // Read-only, a kind the earlier Baton never wrote has no database (undefined).
      const sub = root.openDB<unknown, string>({ name: kind, encoding: 'json' }) as
        ReturnType<typeof root.openDB<unknown, string>> | undefined;
      if (sub === undefined) continue;
      for (const { key, value } of sub.getRange())
        puts.push({ type: 'put', key: embeddedKey(kind, key), value: JSON.stringify(value) });
    }
    await db.batch([...puts, done], { sync: true });
    return puts.length;
  } finally {
    await root.close();
  }
}

/** LMDB's meta page holds its magic number right after the page header (16 or 24 bytes by build). */
function hasLmdbMagic(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const head = Buffer.alloc(64);
    const n = readSync(fd, head, 0, head.length, 0);
    return [16, 24].some((at) => at + 4 <= n && head.readUInt32LE(at) === LMDB_MAGIC);
  } finally {
    closeSync(fd);
  }
}

const LMDB_MAGIC = 0xbeefc0de;
