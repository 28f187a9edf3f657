import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, it } from 'node:test';
import { forEachEngine } from '../helpers/engines.js';
import { assertErrorResponse } from '../helpers/errors.js';
import { startMoneyWorld, type MoneyWorld } from '../helpers/money-world.js';
import { storeRows } from '../helpers/store-rows.js';

/**
 * What the admin API accepts, a sync can serve: the API refuses what the sidecar's snapshot validation
 * refuses (issue 17, finding 3), and a row that reaches the store another way makes the sync answer 422
 * naming it, while the node keeps serving the snapshot it has.
 */
forEachEngine('field rules shared by the admin API and the snapshot', (engine) => {
  let world: MoneyWorld;
  const sync = (): Promise<{ status: number; body: any }> => world.control.send('POST', '/api/opensips/routing/sync');
  const serving = async (): Promise<number> => (await world.sidecars[0].get('/api/snapshot')).body.version as number;

  before(async () => {
    world = await startMoneyWorld({ sidecars: 1, engine });
    const node = await world.control.send('PUT', '/api/opensips-nodes/1', { sidecar_address: world.sidecars[0].url });
    assert.equal(node.status, 200, JSON.stringify(node.body));
  });
  after(() => world.stop());

  it('refuses exchange rates of zero, however written and whenever effective', async () => {
    for (const rate of ['0', '0.000', '-0', '-0.000', '-1.5']) {
      for (const effective of [{}, { effective_at: '2099-01-01T00:00:00Z' }]) {
        const response = await world.control.send('POST', '/api/exchange-rates', {
          from_currency: 'USD',
          to_currency: 'AUD',
          rate,
          ...effective,
        });
        assertErrorResponse(response, 400, /rate must be greater than 0/);
        assert.equal(response.body.reason_code, 'invalid_field');
      }
    }
    const accepted = await world.control.send('POST', '/api/exchange-rates', {
      from_currency: 'USD',
      to_currency: 'AUD',
      rate: '0.000001',
    });
    assert.equal(accepted.status, 201, JSON.stringify(accepted.body));
  });

  it("refuses an HA1 that is not hex of its algorithm's length, on create and on update", async () => {
    const md5 = createHash('md5').update('u1:sip.example.net:secret').digest('hex');
    const sha256 = createHash('sha256').update('u1:sip.example.net:secret').digest('hex');
    const registration = (fields: Record<string, unknown>) =>
      world.control.send('POST', '/api/sip-registrations', {
        customer_trunk_id: 10,
        username: `u-${Object.values(fields).join('-').slice(0, 20)}`,
        domain: 'sip.example.net',
        ...fields,
      });
    const refused: [string, string, RegExp][] = [
      ['0'.repeat(31), 'MD5', /password_hash must be 32 hex digits for MD5/],
      [`${'g'.repeat(32)}`, 'MD5', /password_hash/],
      [sha256, 'MD5', /password_hash must be 32 hex digits for MD5/],
      [md5, 'SHA-256', /password_hash must be 64 hex digits for SHA-256/],
      [md5, 'sha512-256', /password_hash must be 64 hex digits for SHA-512-256/],
    ];
    for (const [hash, algorithm, pattern] of refused)
      assertErrorResponse(await registration({ password_hash: hash, hash_algorithm: algorithm }), 400, pattern);
    const created = await registration({ password_hash: md5.toUpperCase(), hash_algorithm: 'md5' });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal((await registration({ password_hash: sha256, hash_algorithm: 'SHA-256' })).status, 201);
    // Changing only the algorithm would leave a 32-digit HA1 under SHA-256: the record as a whole is checked.
    assertErrorResponse(
      await world.control.send('PUT', `/api/sip-registrations/${created.body.id}`, { hash_algorithm: 'SHA-256' }),
      400,
      /password_hash must be 64 hex digits for SHA-256/,
    );
  });

  it('takes the amounts the ledger holds (a credit limit of a million) and refuses what it cannot', async () => {
    const account = await world.control.send('POST', '/api/customer-accounts', {
      name: 'Big spender',
      username: 'big-spender',
      password: 'big-spender-1',
      currency: 'AUD',
      credit_limit: '1000000',
      warning_threshold: '999999999.123456',
    });
    assert.equal(account.status, 201, JSON.stringify(account.body));
    assert.equal(account.body.credit_limit, '1000000');
    const trunk = await world.control.send('POST', '/api/customer-trunks', {
      customer_account_id: account.body.id,
      name: 'Big trunk',
      currency: 'AUD',
      credit_limit: '2500000.50',
    });
    assert.equal(trunk.status, 201, JSON.stringify(trunk.body));
    for (const [limit, pattern] of [
      ['1000000000', /at most 9 integer digits and 6 decimals/],
      ['1.0000001', /at most 9 integer digits and 6 decimals/],
      ['-5', /must not be negative/],
      ['1e6', /decimal string/],
    ] as const) {
      assertErrorResponse(
        await world.control.send('PUT', `/api/customer-accounts/${account.body.id}`, { credit_limit: limit }),
        400,
        pattern,
      );
    }
    // Everything accepted above syncs, and the node takes it.
    const synced = await sync();
    assert.equal(synced.status, 200, JSON.stringify(synced.body));
    assert.equal(await serving(), synced.body.snapshot_version);
  });

  it('answers 422 store_unsyncable naming a planted row, pushes nothing, and syncs again once it is gone', async () => {
    const good = await sync();
    assert.equal(good.status, 200, JSON.stringify(good.body));
    const version = await serving();
    assert.equal(version, good.body.snapshot_version);

    // Planted straight into the store, past the admin API's checks.
    const db = storeRows(world.store, { writable: true });
    const [{ id: planted }] = await db.all<{ id: number }>(
      `INSERT INTO exchange_rates (from_currency, to_currency, rate, effective_at, created_at) VALUES ('USD', 'AUD', '-0', ?, ?) RETURNING id`,
      '2099-06-01T00:00:00.000Z',
      new Date().toISOString(),
    );
    const refused = await sync();
    assertErrorResponse(refused, 422, new RegExp(`exchange_rates ${planted} \\(rate\\) would be refused by the sidecar`));
    assert.equal(refused.body.reason_code, 'store_unsyncable');
    assert.deepEqual([refused.body.table, refused.body.id, refused.body.field], ['exchange_rates', planted, 'rate']);
    assert.equal(await serving(), version, 'the node still serves the last good snapshot');
    await db.all('DELETE FROM exchange_rates WHERE id = ?', planted);

    // A rate row travels without its id: the answer still names the store's row.
    const [{ id: rateRow }] = await db.all<{ id: number }>(
      `INSERT INTO rate_deck_rates (rate_deck_id, prefix, destination_name, rate_per_minute, rate_type, effective_at, created_at, updated_at)
         VALUES (1, '6199', 'Planted', '-0.5', 'per_minute', '2025-01-01T00:00:00.000Z', '2025-01-01T00:00:00.000Z', '2025-01-01T00:00:00.000Z')
         RETURNING id`,
    );
    const rateRefused = await sync();
    assertErrorResponse(rateRefused, 422);
    assert.deepEqual(
      [rateRefused.body.reason_code, rateRefused.body.table, rateRefused.body.id, rateRefused.body.field],
      ['store_unsyncable', 'rate_deck_rates', rateRow, 'rate_per_minute'],
    );
    assert.equal(await serving(), version);
    await db.all('DELETE FROM rate_deck_rates WHERE id = ?', rateRow);
    const again = await sync();
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.ok(again.body.snapshot_version > version);
    assert.equal(await serving(), again.body.snapshot_version);
  });
});
