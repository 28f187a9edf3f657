import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { IncomingRequest, Route } from '../../src/core/http/server.js';
import { answeredWhenDurable } from '../../sync/http/durable.js';
import { openDatabase, walPathOf } from '../../sync/store/database.js';
import { WalFile } from '../../sync/store/wal-file.js';
import { WalFlusher } from '../../sync/store/wal-flush.js';

/** A sync that finishes when the test says so. */
function controlledSyncs(): { syncFile: () => Promise<void>; started: number; finish: (error?: Error) => void } {
  const pending: { resolve: () => void; reject: (error: Error) => void }[] = [];
  const control = {
    started: 0,
    syncFile: () =>
      new Promise<void>((resolve, reject) => {
        control.started += 1;
        pending.push({ resolve, reject });
      }),
    finish: (error?: Error) => {
      const next = pending.shift()!;
      if (error === undefined) next.resolve();
      else next.reject(error);
    },
  };
  return control;
}

const settled = async (promise: Promise<unknown>): Promise<boolean> => {
  let done = false;
  promise.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((resolve) => setImmediate(resolve));
  return done;
};

describe('group commit (WalFlusher)', () => {
  it('starts a sync of its own for a caller while fewer than two run, and makes the callers who find two running share the next one', async () => {
    const syncs = controlledSyncs();
    const flusher = new WalFlusher('/db-wal', undefined, syncs.syncFile);
    const first = flusher.flushed();
    // A sync already running may have been called before second's commit: second's own is called now.
    const second = flusher.flushed();
    assert.equal(syncs.started, 2);
    const third = flusher.flushed();
    const fourth = flusher.flushed();
    // Two running: third and fourth wait for one sync, called only once a running one ends (so after their commits).
    assert.equal(syncs.started, 2);
    syncs.finish();
    await first;
    assert.equal(syncs.started, 3);
    assert.equal(await settled(second), false);
    assert.equal(await settled(third), false);
    syncs.finish();
    await second;
    assert.equal(await settled(third), false);
    syncs.finish();
    await Promise.all([third, fourth]);
    assert.equal(syncs.started, 3);
    assert.equal(flusher.syncs, 3);
  });

  it('refuses every waiter after a failed fdatasync, also those of a sync that ends fine after it, tells the owner once, and never syncs again', async () => {
    const syncs = controlledSyncs();
    const failures: Error[] = [];
    const flusher = new WalFlusher('/db-wal', (error) => failures.push(error), syncs.syncFile);
    const first = flusher.flushed();
    const second = flusher.flushed();
    const queued = flusher.flushed();
    syncs.finish(new Error('EIO'));
    await assert.rejects(first, /EIO/);
    await assert.rejects(queued, /EIO/);
    // Its own sync succeeded, but after a failure the kernel may have dropped pages that sync did not see.
    syncs.finish();
    await assert.rejects(second, /EIO/);
    await assert.rejects(flusher.flushed(), /EIO/);
    assert.equal(syncs.started, 2);
    assert.equal(failures.length, 1);
  });

  it('one sync at a time when so made: a caller who came during a sync waits for the next one', async () => {
    const syncs = controlledSyncs();
    const flusher = new WalFlusher('/db-wal', undefined, syncs.syncFile, 1);
    const first = flusher.flushed();
    const second = flusher.flushed();
    const third = flusher.flushed();
    assert.equal(syncs.started, 1);
    syncs.finish();
    await first;
    assert.equal(await settled(second), false);
    assert.equal(syncs.started, 2);
    syncs.finish();
    await Promise.all([second, third]);
    assert.equal(flusher.syncs, 2);
  });

  it('syncs the real WAL of a database opened NORMAL, and has nothing to do in memory or before the WAL exists', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wal-flush-'));
    try {
      const path = join(dir, 'centre.db');
      const db = openDatabase(path);
      // 1 = NORMAL: a commit does not fsync on the event loop; the flusher does it for the acknowledgement.
      assert.equal(db.pragma('synchronous', { simple: true }), 1);
      db.exec('CREATE TABLE t (x)');
      const flusher = new WalFlusher(walPathOf(path));
      await flusher.flushed();
      assert.equal(flusher.syncs, 1);
      // Two at once, each on its own descriptor of the WAL.
      db.exec('INSERT INTO t VALUES (1)');
      await Promise.all([flusher.flushed(), flusher.flushed()]);
      assert.equal(flusher.syncs, 3);
      await flusher.close();
      db.close();
      const missing = new WalFlusher(join(dir, 'none.db-wal'));
      await missing.flushed();
      assert.equal(walPathOf(':memory:'), null);
      const memory = new WalFlusher(null, undefined, () => Promise.reject(new Error('never called')));
      await memory.flushed();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the kept WAL descriptor (WalFile)', () => {
  const fileAt = (path: string): string => {
    const stats = statSync(path);
    return `${stats.dev}:${stats.ino}`;
  };

  it('opens the WAL once for many syncs, across checkpoints that restart or truncate it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wal-file-'));
    try {
      const path = join(dir, 'centre.db');
      const db = openDatabase(path);
      const wal = new WalFile(walPathOf(path)!);
      db.exec('CREATE TABLE t (x)');
      for (let i = 0; i < 3; i++) {
        db.prepare('INSERT INTO t VALUES (?)').run(i);
        await wal.dataSync();
      }
      db.pragma('wal_checkpoint(RESTART)');
      db.prepare('INSERT INTO t VALUES (?)').run(3);
      await wal.dataSync();
      db.pragma('wal_checkpoint(TRUNCATE)');
      assert.equal(statSync(walPathOf(path)!).size, 0);
      db.prepare('INSERT INTO t VALUES (?)').run(4);
      await wal.dataSync();
      // The same inode throughout: the frames written after each checkpoint are in the file held open.
      assert.equal(wal.opens, 1);
      assert.equal(wal.heldFile, fileAt(walPathOf(path)!));
      db.close();
      await wal.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('follows a WAL deleted and created anew (last connection closed, journal mode left WAL and back)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wal-file-'));
    try {
      const path = join(dir, 'centre.db');
      const walPath = walPathOf(path)!;
      let db = openDatabase(path);
      const wal = new WalFile(walPath);
      db.exec('CREATE TABLE t (x)');
      await wal.dataSync();
      const first = wal.heldFile;
      assert.equal(first, fileAt(walPath));

      // The last connection's close checkpoints and deletes the WAL: nothing to sync, the old descriptor let go.
      db.close();
      await wal.dataSync();
      assert.equal(wal.heldFile, '');

      db = openDatabase(path);
      db.prepare('INSERT INTO t VALUES (?)').run(1);
      await wal.dataSync();
      assert.equal(wal.heldFile, fileAt(walPath));
      assert.equal(wal.opens, 2);

      // Out of WAL and back, with no sync in between: a new file at the path, found by its inode.
      const held = wal.heldFile;
      db.pragma('journal_mode = DELETE');
      db.pragma('journal_mode = WAL');
      db.prepare('INSERT INTO t VALUES (?)').run(2);
      assert.notEqual(fileAt(walPath), held);
      await wal.dataSync();
      assert.equal(wal.heldFile, fileAt(walPath));
      assert.equal(wal.opens, 3);
      db.close();
      await wal.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('answeredWhenDurable', () => {
  const request = {} as IncomingRequest;
  const route = (method: Route['method'], status: number): Route => ({
    method,
    path: '/x',
    maxBodyBytes: 0,
    handler: () => ({ status, body: '{}' }),
  });

  it('holds a write’s answer until the flush, answers refusals and reads at once', async () => {
    let release!: () => void;
    const flush = new Promise<void>((resolve) => (release = resolve));
    const [write, refused, read] = answeredWhenDurable([route('POST', 201), route('PUT', 409), route('GET', 200)], () => flush);
    const answer = Promise.resolve(write.handler(request));
    assert.equal(await settled(answer), false);
    assert.equal(((await refused.handler(request)) as { status: number }).status, 409);
    assert.equal((read.handler(request) as { status: number }).status, 200);
    release();
    assert.equal((await answer).status, 201);
  });
});
