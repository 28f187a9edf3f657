import assert from 'node:assert/strict';
import { it } from 'node:test';
import { OneAtATime } from '../../sync/store/one-at-a-time.js';

/** ConfigStore.exclusively's in-process part (sync/store/one-at-a-time.ts). */
it('runs work of one name one at a time, in order, past a failure; other names alongside', async () => {
  const serial = new OneAtATime();
  const events: string[] = [];
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const first = serial.run('networks', async () => {
    events.push('first starts');
    await held;
    events.push('first ends');
    throw new Error('first failed');
  });
  const second = serial.run('networks', () => {
    events.push('second runs');
    return Promise.resolve(2);
  });
  const other = serial.run('other', () => {
    events.push('other runs');
    return Promise.resolve('other');
  });
  assert.equal(await other, 'other');
  assert.deepEqual(events, ['first starts', 'other runs'], 'the second waits for the first; another name does not');
  release();
  await assert.rejects(first, /first failed/);
  assert.equal(await second, 2);
  assert.deepEqual(events, ['first starts', 'other runs', 'first ends', 'second runs']);
});
