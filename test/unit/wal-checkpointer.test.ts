import assert from 'node:assert/strict';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { getRow } from '../../sync/ledger/sql-steps.js';
import { WalCheckpointer } from '../../sync/store/checkpointer.js';
import { openDatabase } from '../../sync/store/database.js';
import { openCentreStores } from '../../sync/stores.js';

/** Rows enough for some thousand pages, committed on `db`; the database file grows only when they are checkpointed into it. */
function fill(db: ReturnType<typeof openDatabase>): void {
  db.exec('CREATE TABLE IF NOT EXISTS filler (id INTEGER PRIMARY KEY, text TEXT NOT NULL)');
  const insert = db.prepare('INSERT INTO filler (text) VALUES (?)');
  db.transaction(() => {
    for (let i = 0; i < 2000; i++) insert.run('x'.repeat(2000));
  })();
}

describe('the WAL checkpointer (store/checkpointer.ts)', () => {
  it('copies the WAL into the database file from its own thread, the committing connection never checkpointing', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'checkpointer-')), 'config.db');
    const db = openDatabase(path);
    db.pragma('wal_autocheckpoint = 0');
    const before = statSync(path).size;
    fill(db);
    // Without a checkpoint the rows are in the WAL alone.
    assert.equal(statSync(path).size, before);
    const failures: string[] = [];
    const checkpointer = new WalCheckpointer(path, (message) => failures.push(message), 20);
    const deadline = Date.now() + 10_000;
    while (statSync(path).size < before + 2000 * 2000 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.ok(statSync(path).size >= before + 2000 * 2000, 'the checkpointer copied the rows into the database file');
    await checkpointer.stop();
    db.close();
    assert.deepEqual(failures, []);
  });

  it('is how the serving stores checkpoint: their connection has the automatic checkpoint off', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'checkpointer-')), 'config.db');
    const stores = openCentreStores(path);
    try {
      // A connection's setting is its own: read through the stores' connection (the ledger's steps run on it).
      const row = await stores.ledger.read(getRow<{ wal_autocheckpoint: number }>('PRAGMA wal_autocheckpoint'));
      assert.equal(row?.wal_autocheckpoint, 0);
    } finally {
      await stores.close();
    }
  });
});
