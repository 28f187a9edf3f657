import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { runQueueSeconds } from '../../src/devkit/process-cpu.js';

/** The main thread's schedstat fields as the kernel has them: [time on a CPU, time waiting for one, timeslices] in ns. */
function schedstat(): number[] {
  return readFileSync(`/proc/${process.pid}/schedstat`, 'utf8').trim().split(' ').map(Number);
}

test(
  'runQueueSeconds is the time waiting for a core (schedstat field 2), not the time on one',
  { skip: !existsSync('/proc/self/schedstat') },
  () => {
    const before = schedstat();
    const waited = runQueueSeconds(process.pid);
    const after = schedstat();
    // Both counters only grow; the read falls between the two around it.
    assert.ok(waited >= before[1] / 1e9 && waited <= after[1] / 1e9, `${waited} s not within ${before[1] / 1e9}..${after[1] / 1e9}`);
    // And it is not the running time: by the test's start this process has run far longer (loading modules) than
    // the reads above take, so a read of field 1 would fall outside the waiting bounds unless the two were equal.
    if (before[0] > after[1]) assert.ok(waited < before[0] / 1e9);
  },
);
