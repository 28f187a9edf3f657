import { open, stat, type FileHandle } from 'node:fs/promises';

/**
 * The SQLite WAL, held open between the group commit's fdatasyncs (wal-flush.ts): an open and a close per
 * flush were two of its three trips to libuv's pool.
 *
 * A kept descriptor must follow the file SQLite writes. A checkpoint that restarts or truncates the WAL keeps
 * its inode, so the descriptor still reaches every frame written since. But SQLite deletes the WAL when the
 * last connection closes (or the journal mode leaves WAL), and a later connection creates a new file at the
 * path: a descriptor on the old inode would sync a file no longer used. So each sync first looks at the path:
 * a different inode (dev + ino) is opened afresh, and no file at all means nothing committed since the last
 * checkpoint, nothing to sync.
 */
export class WalFile {
  private handle: FileHandle | null = null;
  private identity = '';
  /** Opens of the file (for tests: one per inode, not one per sync). */
  opens = 0;

  /** `dev:ino` of the file held open, '' when none (for tests). */
  get heldFile(): string {
    return this.identity;
  }

  constructor(readonly path: string) {}

  async dataSync(): Promise<void> {
    let current;
    try {
      current = await stat(this.path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      await this.close();
      return;
    }
    if (this.handle === null || `${current.dev}:${current.ino}` !== this.identity) await this.reopen();
    await this.handle!.datasync();
  }

  async close(): Promise<void> {
    const handle = this.handle;
    this.handle = null;
    this.identity = '';
    await handle?.close();
  }

  private async reopen(): Promise<void> {
    await this.close();
    const handle = await open(this.path, 'r');
    // The inode of the descriptor itself (not of the path looked at a moment ago, which may have changed since).
    const opened = await handle.stat();
    this.handle = handle;
    this.identity = `${opened.dev}:${opened.ino}`;
    this.opens += 1;
  }
}
