import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { CONTROL_MAIN, SIDECAR_MAIN } from '../../src/devkit/paths.js';

const SERVICE_PROCESS = new URL('../../src/devkit/service-process.js', import.meta.url).href;

/** Running, not a zombie: an orphan that exits waits for init to reap it, and not every container's init does. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/**
 * A starter (a test runner, a bench, `make run`) killed -9 leaves no service behind: the child sees its
 * stdin pipe end and stops. Without it a killed `make test` left control planes and sidecars running.
 */
for (const [name, main, ready] of [
  ['sidecar', SIDECAR_MAIN, 'sidecar listening'],
  ['control plane', CONTROL_MAIN, 'control plane listening'],
] as const) {
  test(`a ${name} started through startService stops when its starter is killed -9`, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'exit-with-parent-'));
    const starter = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { startService } = await import(${JSON.stringify(SERVICE_PROCESS)});
         const service = await startService(${JSON.stringify(main)}, ['--port', '0', '--data-dir', ${JSON.stringify(dataDir)}], ${JSON.stringify(ready)});
         process.stdout.write(service.child.pid + '\\n');
         setInterval(() => {}, 1000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const childPid = await new Promise<number>((resolve, reject) => {
      let out = '';
      starter.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('\n')) resolve(Number(out.trim()));
      });
      starter.on('exit', (code) => reject(new Error(`starter exited with ${code} before the service was ready`)));
    });
    assert.ok(alive(childPid), 'the service runs while its starter does');
    starter.kill('SIGKILL');
    const deadline = Date.now() + 15_000;
    while (alive(childPid) && Date.now() < deadline) await sleep(100);
    const stillAlive = alive(childPid);
    if (stillAlive) process.kill(childPid, 'SIGKILL');
    assert.equal(stillAlive, false, `the ${name} outlived its starter`);
  });
}
