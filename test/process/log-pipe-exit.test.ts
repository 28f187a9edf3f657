import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { SPOOL_SCHEMA } from '../../src/sidecar/cdr/spool.js';
import { SIDECAR_MAIN } from '../../src/devkit/paths.js';

/** Resolves with the process's exit code (or signal) once it has gone. */
function exited(child: ChildProcess): Promise<number | string> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
}

/** A writer's end of `fifo`, once `reader` has opened its end (an open for writing fails with ENXIO before). */
async function writerEnd(fifo: string): Promise<number> {
  for (;;) {
    try {
      return openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENXIO') throw error;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

/**
 * The logs go to stdout, asynchronously; at exit, what is still buffered is written synchronously (pino's exit
 * hook, sonic-boom's flushSync). sonic-boom 4.2.1 sleeps 100 ms and writes again after any error there, EPIPE
 * included: a sidecar whose stdout reader had died hung in its exit for ever (seen with throwaway scripts).
 * Here the reader is a process that never reads, so the pipe is full when the sidecar is told to stop, and is
 * then killed -9: the sidecar must still exit.
 */
describe('a sidecar whose log reader died', () => {
  const started: ChildProcess[] = [];
  // Also when the test times out (the hang itself): nothing is left running.
  after(() => {
    for (const child of started) child.kill('SIGKILL');
  });

  it('still exits on SIGTERM when its stdout pipe is full and then loses its reader', { timeout: 60_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'log-pipe-exit-'));
    // What fills the pipe: a spool of rows the sidecar refuses, each logged with its body (4 KiB a line).
    const spool = join(dir, 'spool.db');
    const db = new Database(spool);
    db.exec(SPOOL_SCHEMA);
    const insert = db.prepare('INSERT INTO opensips_spool (kind, body, created_at) VALUES (?, ?, 0)');
    for (let i = 0; i < 64; i++) insert.run('unknown', Buffer.from('x'.repeat(4096)).toString('base64'));
    db.close();

    const fifo = join(dir, 'stdout');
    execFileSync('mkfifo', [fifo]);
    // The reader holds the pipe open and reads nothing.
    const reader = spawn('sh', ['-c', `exec sleep 600 < '${fifo}'`], { stdio: 'ignore' });
    started.push(reader);
    const stdout = await writerEnd(fifo);
    const sidecar = spawn(
      process.execPath,
      [SIDECAR_MAIN, '--port', '0', '--data-dir', join(dir, 'data'), '--opensips-spool', spool, '--log-level', 'debug'],
      { stdio: ['ignore', stdout, 'pipe'] },
    );
    started.push(sidecar);
    closeSync(stdout);
    let stderr = '';
    sidecar.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    // The spool is drained (every row refused and logged): 256 KiB of lines for a 64 KiB pipe.
    for (;;) {
      const check = new Database(spool, { readonly: true, timeout: 1000 });
      const { n } = check.prepare('SELECT COUNT(*) AS n FROM opensips_spool').get() as { n: number };
      check.close();
      if (n === 0) break;
      assert.equal(sidecar.exitCode, null, `the sidecar stopped early: ${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    sidecar.kill('SIGTERM');
    // Not needed for the outcome (the reader may die before or during the exit): it lets the exit reach its flush first.
    await new Promise((resolve) => setTimeout(resolve, 500));
    reader.kill('SIGKILL');
    assert.equal(await exited(sidecar), 0, stderr);
  });
});
