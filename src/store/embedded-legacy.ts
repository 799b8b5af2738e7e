/**
 * An earlier Baton kept its embedded store in LMDB (`<data-dir>/store`, one
 * named sub-database per record kind, values as JSON). When the LevelDB
 * store is created in a data dir that holds one, its records are copied in
 * first, in one synced batch; the old folder is left as it was (delete it
 * once the new store is trusted).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { open } from 'lmdb';
import type { ClassicLevel } from 'classic-level';
import { LEGACY_EMBEDDED_STORE_DIR, RECORD_KINDS, embeddedKey } from './keys.js';

/** Copies an LMDB store's records into `db`; returns how many (0 when there is none). */
export async function importLegacyStore(
  dataDir: string,
  db: ClassicLevel<string, string>,
): Promise<number> {
  const path = join(dataDir, LEGACY_EMBEDDED_STORE_DIR);
  if (!existsSync(join(path, 'data.mdb'))) return 0;
  const root = open({ path, maxDbs: 8, encoding: 'json', readOnly: true });
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
    await db.batch(puts, { sync: true });
    return puts.length;
  } finally {
    await root.close();
  }
}
