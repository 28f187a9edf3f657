import Database from 'better-sqlite3';
import { makePrivateDatabaseFile } from '../../core/files/private-file.js';

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
    // Snapshots carry every registration's HA1: owner-only (see private-file.ts).
    makePrivateDatabaseFile(path);
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

  /**
   * `replaceNewer`: the control plane forced this version (the node had been given one ahead of the
   * centre's); the stored snapshots above it go, or a restart would serve them again.
   */
  save(version: number, createdAt: string, checksum: string, bytes: Uint8Array, replaceNewer = false): void {
    const dropNewer = this.db.prepare('DELETE FROM snapshots WHERE version > ?');
    const insert = this.db.prepare(
      'INSERT OR REPLACE INTO snapshots (version, created_at, checksum, received_at, bytes) VALUES (?, ?, ?, ?, ?)',
    );
    const prune = this.db.prepare(
      'DELETE FROM snapshots WHERE version NOT IN (SELECT version FROM snapshots ORDER BY version DESC LIMIT ?)',
    );
    this.db.transaction(() => {
      if (replaceNewer) dropNewer.run(version);
      insert.run(version, createdAt, checksum, new Date().toISOString(), Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      prune.run(KEEP);
    })();
  }

  /**
   * Newest first, each read only when asked for: the newest usually verifies, and reading both 95 MB blobs of
   * the wholesale world up front cost a restart a second.
   */
  *newestFirst(): Generator<StoredSnapshot> {
    const versions = this.db.prepare('SELECT version FROM snapshots ORDER BY version DESC').pluck().all() as number[];
    const read = this.db.prepare('SELECT bytes FROM snapshots WHERE version = ?').pluck();
    for (const version of versions) {
      const bytes = read.get(version) as Buffer | undefined;
      if (bytes !== undefined) yield { version, bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
    }
  }

  /** The newest stored snapshot's version and checksum, without its bytes: what its compiled image must name. */
  newest(): { version: number; checksum: string } | null {
    const row = this.db.prepare('SELECT version, checksum FROM snapshots ORDER BY version DESC LIMIT 1').get() as
      { version: number; checksum: string } | undefined;
    return row ?? null;
  }

  close(): void {
    this.db.close();
  }
}
