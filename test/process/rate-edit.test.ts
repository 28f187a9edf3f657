import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { forEachEngine } from '../helpers/engines.js';
import { assertErrorResponse } from '../helpers/errors.js';
import { startMoneyWorld, type MoneyWorld } from '../helpers/money-world.js';
import { trunk10Cdr } from '../helpers/cdrs.js';

/**
 * A rate edited in place must not reprice calls already made (issue 17, finding 9): the contract says an
 * update "does not retroactively change CDRs that have already been generated. The new rate applies to
 * future calls only." With a real control plane and sidecar: the CDR of a call made before the edit
 * arrives after the edit's sync and is billed at the old price; a call started after it, at the new one.
 */

/** A 73-second answered call from trunk 10 to MOBILE; billed 78 s (6/6 increments on deck 1's 614 row). */
const cdr = (sipCallId: string, startMs: number): Record<string, unknown> => trunk10Cdr(sipCallId, 73, { startMs });

forEachEngine('editing a rate in force', (engine) => {
  let world: MoneyWorld;
  let rateId: number;
  const rates = async (prefix: string): Promise<any[]> =>
    (await world.control.get(`/api/rate-decks/1/rates?prefix=${prefix}`)).body.data as any[];
  const sync = async (): Promise<void> => {
    const response = await world.control.send('POST', '/api/opensips/routing/sync');
    assert.equal(response.status, 200, JSON.stringify(response.body));
    assert.ok(
      response.body.sidecar_results.every((result: { success: boolean }) => result.success),
      JSON.stringify(response.body.sidecar_results),
    );
  };

  before(async () => {
    world = await startMoneyWorld({ engine, sidecars: 1 });
    const node = await world.control.send('PUT', '/api/opensips-nodes/1', { sidecar_address: world.sidecars[0].url });
    assert.equal(node.status, 200, JSON.stringify(node.body));
    await sync();
    const [row] = await rates('614');
    assert.equal(row.rate_per_minute, '0.0250');
    rateId = row.id as number;
  });
  after(() => world.stop());

  it('bills a call made before the edit at the old price, whenever its CDR arrives, and a later call at the new one', async () => {
    const editMs = Date.now();
    // The call started and ended before the edit; its CDR is still on its way (OpenSIPS's spool, say).
    const early = cdr('before-edit@test', editMs - 200_000);

    const edited = await world.control.send('PUT', `/api/rate-decks/1/rates/${rateId}`, { rate_per_minute: '0.0500' });
    assert.equal(edited.status, 200, JSON.stringify(edited.body));
    assert.equal(edited.body.id, rateId, 'the rate keeps its id');
    assert.equal(edited.body.rate_per_minute, '0.0500');
    await sync();

    const old = await world.sidecars[0].post('/api/cdrs/ingest', early);
    assert.equal(old.status, 201, JSON.stringify(old.body));
    assert.equal(old.body.customer_cost, '0.0325', '78 s at 0.0250/min: the price in force when the call started');

    const effectiveMs = Date.parse(edited.body.effective_at as string);
    assert.ok(effectiveMs >= editMs, `the new price takes effect at the edit, not before (${edited.body.effective_at as string})`);
    assert.deepEqual(Object.keys(edited.body).sort(), Object.keys((await rates('614'))[0]).sort());
    assert.ok(!('superseded_by' in edited.body));

    const late = await world.sidecars[0].post('/api/cdrs/ingest', cdr('after-edit@test', effectiveMs + 1_000));
    assert.equal(late.status, 201, JSON.stringify(late.body));
    assert.equal(late.body.customer_cost, '0.0650', '78 s at 0.0500/min');

    // The API shows the rate once, with its current price, as the contract's RateDeckRate.
    const listed = await rates('614');
    assert.equal(listed.length, 1);
    assert.deepEqual([listed[0].id, listed[0].rate_per_minute], [rateId, '0.0500']);
  });

  it('edits a name in place, refuses a new prefix on a rate in force, and deletes a rate with its history', async () => {
    const renamed = await world.control.send('PUT', `/api/rate-decks/1/rates/${rateId}`, { destination_name: 'Australia Mobile (all)' });
    assert.equal(renamed.status, 200, JSON.stringify(renamed.body));
    assert.equal(renamed.body.rate_per_minute, '0.0500');
    assertErrorResponse(
      await world.control.send('PUT', `/api/rate-decks/1/rates/${rateId}`, { prefix: '615', rate_per_minute: '0.0600' }),
      400,
      /prefix cannot change on rate/,
    );

    // A rate not yet in force has priced no call: edited in place, no history.
    const future = await world.control.send('POST', '/api/rate-decks/1/rates', {
      prefix: '6177',
      destination_name: 'Future',
      rate_per_minute: '0.0100',
      effective_at: '2099-01-01T00:00:00Z',
    });
    assert.equal(future.status, 201, JSON.stringify(future.body));
    const moved = await world.control.send('PUT', `/api/rate-decks/1/rates/${future.body.id}`, { rate_per_minute: '0.0200' });
    assert.deepEqual([moved.body.rate_per_minute, moved.body.effective_at], ['0.0200', '2099-01-01T00:00:00.000Z']);

    assert.equal((await world.control.send('DELETE', `/api/rate-decks/1/rates/${rateId}`)).status, 204);
    assert.deepEqual(await rates('614'), []);
    await sync();
    // The shorter prefix 61 (0.0500/min) rates the number now; had the history stayed behind, the old
    // 0.0250 row of 614 would be in force again.
    const after = await world.sidecars[0].post('/api/cdrs/ingest', cdr('after-delete@test', Date.now()));
    assert.equal(after.body.customer_cost, '0.0650', JSON.stringify(after.body));
  });
});
