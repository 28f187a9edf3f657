import Database from 'better-sqlite3';

/**
 * The node's last good snapshots in its local SQLite file, so a restarted
 * sidecar serves routing with nothing else running. Written only after a
 * snapshot verified and compiled; the newest two are kept, so a file that
 * stops verifying (disk corruption) still leaves the one before it.
 */
export interface StoredSnapshot {
  version: number;
  bytes: Uint8Array;
}

const KEEP = 2;

export class SnapshotStore {
  private readonly db: Database.Database;

  constructor(path: string) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    // FULL: a snapshot acknowledged to the control plane survives power loss, not only a crash.
    this.db.pragma('synchronous = FULL');
    this.db.exec(`CREATE TABLE IF NOT EXISTS snapshots (
      version INTEGER PRIMARY KEY,
      created_at TEXT NOT NULL,
      checksum TEXT NOT NULL,
      received_at TEXT NOT NULL,
      bytes BLOB NOT NULL
    )`);
  }

  save(version: number, createdAt: string, checksum: string, bytes: Uint8Array): void {
    const insert = this.db.prepare(
      'INSERT OR REPLACE INTO snapshots (version, created_at, checksum, received_at, bytes) VALUES (?, ?, ?, ?, ?)',
    );
    const prune = this.db.prepare(
      'DELETE FROM snapshots WHERE version NOT IN (SELECT version FROM snapshots ORDER BY version DESC LIMIT ?)',
    );
    this.db.transaction(() => {
      insert.run(version, createdAt, checksum, new Date().toISOString(), Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      prune.run(KEEP);
    })();
  }

  /** Newest first. */
  list(): StoredSnapshot[] {
    const rows = this.db.prepare('SELECT version, bytes FROM snapshots ORDER BY version DESC').all() as {
      version: number;
      bytes: Buffer;
    }[];
    return rows.map((row) => ({
      version: row.version,
      bytes: new Uint8Array(row.bytes.buffer, row.bytes.byteOffset, row.bytes.byteLength),
    }));
  }

  close(): void {
    this.db.close();
  }
}
