import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { assertErrorResponse } from '../helpers/errors.js';
import { forEachEngine } from '../helpers/engines.js';
import { startMoneyWorld, type MoneyWorld } from '../helpers/money-world.js';

/**
 * Updates the fuzz suite (fuzz.test.ts) found wrong, on the fixture world (carrier deck 101 is assigned to
 * carrier trunk 20): an update that names nothing to change, and one that leaves the store in a shape
 * every later routing sync refuses.
 */
forEachEngine('admin updates refuse what they cannot honestly write', (engine) => {
  let world: MoneyWorld;

  before(async () => {
    world = await startMoneyWorld({ engine, sidecars: 0 });
  });

  after(async () => {
    await world.stop();
  });

  it('a PUT naming no field of the record is a 400 and writes nothing, not even updated_at', async () => {
    const before = (await world.control.get('/api/rate-decks/1')).body;
    for (const body of [{}, { nmae: 'typo' }, { constructor: { polluted: true } }]) {
      const answer = await world.control.send('PUT', '/api/rate-decks/1', body);
      assertErrorResponse(answer, 400, /the body names none of the fields: name, deck_type/);
      assert.equal(answer.body.reason_code, 'invalid_field');
    }
    assert.deepEqual((await world.control.get('/api/rate-decks/1')).body, before);
  });

  it('a deck assigned to a carrier trunk cannot become a customer deck, and the routing sync keeps working', async () => {
    const answer = await world.control.send('PUT', '/api/rate-decks/101', { deck_type: 'customer' });
    assertErrorResponse(answer, 422, /assigned to carrier trunk 20/);
    assert.equal(answer.body.reason_code, 'reference_mismatch');
    assert.equal((await world.control.get('/api/rate-decks/101')).body.deck_type, 'carrier');
    assert.equal((await world.control.send('POST', '/api/opensips/routing/sync')).status, 200);
    // A deck nobody holds may still change kind.
    const spare = (await world.control.send('POST', '/api/rate-decks', { name: 'Spare', deck_type: 'carrier', currency: 'AUD' })).body;
    assert.equal((await world.control.send('PUT', `/api/rate-decks/${spare.id}`, { deck_type: 'customer' })).status, 200);
  });

  it("a partner product's sell deck stays a customer deck in the product's currency, and a product takes no other", async () => {
    const control = world.control;
    const deck = (await control.send('POST', '/api/rate-decks', { name: 'Retail', deck_type: 'customer', currency: 'AUD' })).body;
    const tenant = (await control.send('POST', '/api/partner-tenants', { tenant_id: 'guards', name: 'Guards' })).body;
    const product = await control.send('POST', '/api/partner-products', {
      partner_tenant_id: tenant.id,
      product_id: 'guarded',
      currency: 'AUD',
      rate_deck_id: deck.id,
    });
    assert.equal(product.status, 201, JSON.stringify(product.body));
    for (const change of [{ currency: 'USD' }, { deck_type: 'carrier' }]) {
      const answer = await control.send('PUT', `/api/rate-decks/${deck.id}`, change);
      assertErrorResponse(answer, 422, /partner product \d+'s \(guarded\) sell deck/);
      assert.equal(answer.body.reason_code, 'reference_mismatch');
    }
    assert.equal((await control.get(`/api/rate-decks/${deck.id}`)).body.currency, 'AUD');
    const usd = (await control.send('POST', '/api/rate-decks', { name: 'Retail USD', deck_type: 'customer', currency: 'USD' })).body;
    const moved = await control.send('PUT', `/api/partner-products/${product.body.id}`, { rate_deck_id: usd.id });
    assertErrorResponse(moved, 422, /is in USD, the product in AUD/);
    assert.equal(moved.body.reason_code, 'reference_mismatch');
    // Closed, the product sells nothing: its deck may change.
    assert.equal((await control.send('PUT', `/api/partner-products/${product.body.id}`, { status: 'closed' })).status, 200);
    assert.equal((await control.send('PUT', `/api/rate-decks/${deck.id}`, { currency: 'USD' })).status, 200);
  });
});
