import Database from 'better-sqlite3';
import { makePrivateDatabaseFile } from '../../core/files/private-file.js';
import type { Delta } from '../../core/protocol/deltas.js';

/**
 * The deltas this node applied since the snapshot it serves was built (issue 18), in its local SQLite file
 * beside the snapshots (sidecar.db), so a restarted sidecar serves the stored snapshot with them applied, the
 * latest state it had, before it reaches the centre. Written before each batch goes into service.
 *
 * synchronous = NORMAL, not FULL as the snapshots: a kill -9 loses nothing (WAL), and what power loss could take
 * back the centre still holds and sends again (the node asks from the last delta it has).
 */
export class DeltaStore {
  private readonly db: Database.Database;
  private readonly sql;

  constructor(path: string) {
    makePrivateDatabaseFile(path); // rows carry the same configuration as the snapshots
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.exec('CREATE TABLE IF NOT EXISTS applied_deltas (seq INTEGER PRIMARY KEY, delta TEXT NOT NULL)');
    this.sql = {
      insert: this.db.prepare('INSERT OR REPLACE INTO applied_deltas (seq, delta) VALUES (?, ?)'),
      after: this.db.prepare('SELECT delta FROM applied_deltas WHERE seq > ? ORDER BY seq'),
      dropUpTo: this.db.prepare('DELETE FROM applied_deltas WHERE seq <= ?'),
      dropAll: this.db.prepare('DELETE FROM applied_deltas'),
    };
  }

  save(deltas: readonly Delta[]): void {
    this.db.transaction(() => {
      for (const delta of deltas) this.sql.insert.run(delta.seq, JSON.stringify(delta));
    })();
  }

  /** The stored deltas past `seq`, in order. */
  after(seq: number): Delta[] {
    return (this.sql.after.all(seq) as { delta: string }[]).map((row) => JSON.parse(row.delta) as Delta);
  }

  /** A snapshot that includes them is in service: they are not needed again. */
  dropUpTo(seq: number): void {
    this.sql.dropUpTo.run(seq);
  }

  dropAll(): void {
    this.sql.dropAll.run();
  }

  close(): void {
    this.db.close();
  }
}
