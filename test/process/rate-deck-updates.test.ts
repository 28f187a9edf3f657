import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { after, before, it } from 'node:test';
import { assertErrorResponse } from '../helpers/errors.js';
import { eventually, startMoneyWorld, type MoneyWorld } from '../helpers/money-world.js';
import { forEachEngine } from '../helpers/engines.js';
import { SidecarProcess } from '../helpers/sidecar.js';
import { MOBILE, trunk10Cdr } from '../helpers/cdrs.js';

/**
 * The rate-deck update workflow (issue 20) with a real control plane and sidecar: an update created with a
 * near-future effective_at, the control plane restarted before it is due, activated once after, its deck's
 * trunks notified and suspended, a suspended trunk's call refused by the sidecar with no operator's sync, a
 * download reinstating it, the new rate pricing calls from its time and not before, a later update
 * superseding it at its own time, and another restart activating nothing twice.
 */
/** Trunk 10's addresses (203.0.113.0/24); deck 1 is on trunks 10, 11 and 14. */
const TRUNK_10_SOURCE = '203.0.113.77';

/** A 73-second answered call from trunk 10 to MOBILE, billed 78 s on the 6/6 increments the rates below carry. */
const cdr = (sipCallId: string, startMs: number): Record<string, unknown> => trunk10Cdr(sipCallId, 73, { startMs });

const mobileRate = (price: string): Record<string, unknown> => ({
  prefix: '614',
  destination_name: 'Australia Mobile',
  rate_per_minute: price,
  billing_increment_initial: 6,
  billing_increment_step: 6,
});

/** Resolves once the clock has passed `iso`: waiting for a known time, not for something to happen. */
async function until(iso: string): Promise<void> {
  const wait = Date.parse(iso) - Date.now() + 5;
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
}

forEachEngine('rate-deck updates', (engine) => {
  let world: MoneyWorld;
  /**
   * The control plane now serving, restarted on its data directory (on a new port: the old one may not be free
   * at once). The sidecar's money rounds still go to the old one; nothing here needs them.
   */
  let control: SidecarProcess;
  let controlDir: string;

  const restartControlPlane = async (): Promise<void> => {
    await control.kill();
    control = await SidecarProcess.startControlPlane({ dataDir: controlDir, args: ['--store', world.store] });
  };
  const update = async (id: number): Promise<any> => {
    const response = await control.get(`/api/rate-deck-updates/${id}`);
    assert.equal(response.status, 200, response.text);
    return response.body;
  };
  const trunkStatus = async (id: number): Promise<string> => (await control.get(`/api/customer-trunks/${id}`)).body.status as string;
  const authTrunk10 = async (): Promise<any> =>
    (await world.sidecars[0].post('/api/opensips/call/auth', { source_ip: TRUNK_10_SOURCE, dnis: MOBILE, ani: '61255501234' })).body;

  before(async () => {
    world = await startMoneyWorld({ sidecars: 1, engine });
    control = world.control;
    controlDir = join(dirname(world.snapshotFile), 'control');
    const node = await control.send('PUT', '/api/opensips-nodes/1', { sidecar_address: world.sidecars[0].url });
    assert.equal(node.status, 200, JSON.stringify(node.body));
    const sync = await control.send('POST', '/api/opensips/routing/sync');
    assert.equal(sync.status, 200, JSON.stringify(sync.body));
  });
  after(async () => {
    await Promise.all([world.stop(), control.kill()]);
  });

  it('activates once at its time across a restart, suspends until download, and prices calls from its time on', async () => {
    const effectiveAt = new Date(Date.now() + 5_000).toISOString();
    const created = await control.send('POST', '/api/rate-deck-updates', {
      rate_deck_id: 1,
      update_type: 'customer', // the prose's spelling: a customer deck's update
      effective_at: effectiveAt,
      suspend_until_downloaded: true,
      rates: [mobileRate('0.0400')],
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = created.body.id as number;
    assert.deepEqual(
      [created.body.status, created.body.update_type, created.body.effective_at, created.body.activated_at, created.body.rate_count],
      ['pending', 'incremental', effectiveAt, null, 1],
    );
    assert.equal((await authTrunk10()).allowed, true, 'nothing is suspended before the update is due');

    // Down across the update's time: the restarted control plane activates it as it starts.
    await control.kill();
    await until(effectiveAt);
    control = await SidecarProcess.startControlPlane({ dataDir: controlDir, args: ['--store', world.store] });
    const active = await update(id);
    assert.equal(active.status, 'active');
    assert.ok(active.activated_at >= effectiveAt, `activated at ${active.activated_at as string}, due ${effectiveAt}`);
    assert.deepEqual(
      (active.notifications as Record<string, unknown>[]).map((n) => [n.customer_trunk_id, n.suspended_at !== null, n.downloaded_at]),
      [
        [10, true, null],
        [11, true, null],
        [14, true, null],
      ],
    );
    assert.equal(await trunkStatus(10), 'suspended');

    // The activation's own sync takes the suspension to the sidecar: no operator sync here.
    await eventually(async () => {
      const auth = await authTrunk10();
      assert.equal(auth.allowed, false, JSON.stringify(auth));
      // A suspended trunk's addresses leave the sidecar's index (compile.ts), as for any trunk not active.
      assert.deepEqual([auth.reject_code, auth.reason_code], [403, 'source_ip_not_authorised']);
    }, 30_000);

    // The new rate prices calls from its time on, and not a call made before it, whenever its CDR arrives.
    const before = await world.sidecars[0].post('/api/cdrs/ingest', cdr('before-update@test', Date.parse(effectiveAt) - 200_000));
    assert.equal(before.status, 201, JSON.stringify(before.body));
    assert.equal(before.body.customer_cost, '0.0325', '78 s at 0.0250/min: the rate in force when the call started');
    const afterIt = await world.sidecars[0].post('/api/cdrs/ingest', cdr('after-update@test', Date.parse(effectiveAt) + 1_000));
    assert.equal(afterIt.status, 201, JSON.stringify(afterIt.body));
    assert.equal(afterIt.body.customer_cost, '0.0520', "78 s at 0.0400/min: the update's rate");

    // Only a pending update can be deleted; an active one is the audit trail.
    assertErrorResponse(await control.send('DELETE', `/api/rate-deck-updates/${id}`), 400, /only a pending update/);

    // Trunk 10 downloads: reinstated, and the sidecar admits its calls again; trunk 11 has not, and stays suspended.
    const downloaded = await control.post(`/api/rate-deck-updates/${id}/download/10`, {});
    assert.equal(downloaded.status, 200, JSON.stringify(downloaded.body));
    assert.deepEqual([downloaded.body.message, downloaded.body.reinstated], ['rate deck downloaded', true]);
    assert.equal(await trunkStatus(10), 'active');
    assert.equal(await trunkStatus(11), 'suspended');
    await eventually(async () => assert.equal((await authTrunk10()).allowed, true), 30_000);
    const again = await control.post(`/api/rate-deck-updates/${id}/download/10`, {});
    assert.deepEqual([again.status, again.body.reinstated], [200, false], 'a second download records nothing new');

    // Restarted again: nothing is activated twice (trunk 10 would be suspended again, its notification renewed).
    const notifiedAt = (await update(id)).notifications[0].notified_at as string;
    await restartControlPlane();
    const later = await update(id);
    assert.deepEqual([later.status, later.activated_at], ['active', active.activated_at]);
    assert.equal(later.notifications.length, 3);
    assert.equal(later.notifications[0].notified_at, notifiedAt);
    assert.notEqual(later.notifications[0].downloaded_at, null);
    assert.equal(await trunkStatus(10), 'active');

    // A later update, left to the running scheduler's timer: it supersedes the first at its own time.
    const nextAt = new Date(Date.now() + 3_000).toISOString();
    const next = await control.send('POST', '/api/rate-deck-updates', {
      rate_deck_id: 1,
      update_type: 'full_replace',
      effective_at: nextAt,
      rates: [mobileRate('0.0450')],
    });
    assert.equal(next.status, 201, JSON.stringify(next.body));
    assert.equal(next.body.status, 'pending');
    await eventually(async () => assert.equal((await update(next.body.id as number)).status, 'active'), 30_000);
    assert.ok((await update(next.body.id as number)).activated_at >= nextAt);
    assert.equal((await update(id)).status, 'superseded');
    assert.equal(await trunkStatus(10), 'active', 'not suspending: this update did not ask to');
    const listed = await control.get('/api/rate-deck-updates?status=superseded');
    assert.deepEqual(
      (listed.body as { id: number }[]).map((row) => row.id),
      [id],
    );
    await eventually(async () => {
      const priced = await world.sidecars[0].post('/api/cdrs/ingest', cdr(`after-next-${Date.now()}@test`, Date.parse(nextAt) + 1_000));
      assert.equal(priced.body.customer_cost, '0.0585', JSON.stringify(priced.body));
    }, 30_000);
  });

  it('deletes a pending update with its rates, and refuses what the contract refuses', async () => {
    const created = await control.send('POST', '/api/rate-deck-updates', {
      rate_deck_id: 1,
      update_type: 'incremental',
      effective_at: '2099-01-01T00:00:00Z',
      rates: [{ prefix: '6178', destination_name: 'Future', rate_per_minute: '0.0100' }],
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal((await control.get('/api/rate-decks/1/rates?prefix=6178')).body.data.length, 1);
    assert.ok(!('rate_deck_update_id' in (await control.get('/api/rate-decks/1/rates?prefix=6178')).body.data[0]));
    assert.equal((await control.send('DELETE', `/api/rate-deck-updates/${created.body.id}`)).status, 204);
    assertErrorResponse(await control.get(`/api/rate-deck-updates/${created.body.id}`), 404);
    assert.deepEqual((await control.get('/api/rate-decks/1/rates?prefix=6178')).body.data, [], 'its rates went with it');

    assertErrorResponse(
      await control.send('POST', '/api/rate-deck-updates', { update_type: 'incremental', effective_at: '2099-01-01T00:00:00Z' }),
      400,
    );
    assertErrorResponse(
      await control.send('POST', '/api/rate-deck-updates', { rate_deck_id: 1, update_type: 'incremental', effective_at: 'soon' }),
      400,
      /effective_at/,
    );
    assertErrorResponse(
      await control.send('POST', '/api/rate-deck-updates', {
        rate_deck_id: 999,
        update_type: 'incremental',
        effective_at: '2099-01-01T00:00:00Z',
      }),
      422,
    );
    assertErrorResponse(
      await control.send('POST', '/api/rate-deck-updates', {
        rate_deck_id: 1,
        update_type: 'carrier',
        effective_at: '2099-01-01T00:00:00Z',
      }),
      422,
      /customer deck/,
    );
    assertErrorResponse(
      await control.send('POST', '/api/rate-deck-updates', {
        rate_deck_id: 1,
        update_type: 'incremental',
        effective_at: '2099-01-01T00:00:00Z',
        rates: [{ prefix: '61x', destination_name: 'x', rate_per_minute: '0.01' }],
      }),
      400,
      /rates\[0\]/,
    );
    assertErrorResponse(await control.send('DELETE', '/api/rate-deck-updates/424242'), 404);

    // An effective_at already past: activated at once, before the answer.
    const late = await control.send('POST', '/api/rate-deck-updates', {
      rate_deck_id: 1,
      update_type: 'incremental',
      effective_at: '2020-01-01T00:00:00Z',
    });
    assert.equal(late.status, 201, JSON.stringify(late.body));
    assert.equal(late.body.status, 'active');
    assert.notEqual(late.body.activated_at, null);
    assertErrorResponse(await control.post('/api/rate-deck-updates/1/download/12', {}), 404, /not notified/);
    assertErrorResponse(await control.get('/api/rate-deck-updates?status=closed'), 400);
  });
});
