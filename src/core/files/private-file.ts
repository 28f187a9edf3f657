import { chmodSync, closeSync, constants, existsSync, openSync } from 'node:fs';
import { open, unlink } from 'node:fs/promises';

/**
 * Files that hold secrets (the SIP registrations' HA1s travel in every snapshot; config.db holds them
 * and the ledger) are readable by their owner only. SQLite creates a database's -wal, -shm and -journal
 * files with the database file's own permissions, so a database made 0600 before it is opened keeps
 * its companions private too; files made by an older version are tightened here as well.
 */
export const PRIVATE_MODE = 0o600;

const SQLITE_COMPANIONS = ['', '-wal', '-shm', '-journal'];

/** Creates `path` empty and owner-only when missing, and takes group and other access off it and its SQLite companions. */
export function makePrivateDatabaseFile(path: string): void {
  if (path === ':memory:') return;
  // O_CREAT with the mode: the umask can only take bits away, so the file is never wider than 0600.
  closeSync(openSync(path, constants.O_CREAT | constants.O_WRONLY, PRIVATE_MODE));
  for (const suffix of SQLITE_COMPANIONS) if (existsSync(path + suffix)) chmodSync(path + suffix, PRIVATE_MODE);
}

/**
 * Writes `bytes` to a new owner-only file at `path`. O_EXCL and O_NOFOLLOW: a file or symlink someone
 * left under that name is removed and never written through (a symlink would redirect the write).
 * `durable`: synced to disk before it resolves (a file about to be renamed into place).
 */
export async function writePrivateFile(path: string, bytes: Uint8Array, options: { durable?: boolean } = {}): Promise<void> {
  const flags = constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY | constants.O_NOFOLLOW;
  let handle;
  try {
    handle = await open(path, flags, PRIVATE_MODE);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    await unlink(path);
    handle = await open(path, flags, PRIVATE_MODE);
  }
  try {
    await handle.writeFile(bytes);
    if (options.durable === true) await handle.sync();
  } finally {
    await handle.close();
  }
}
