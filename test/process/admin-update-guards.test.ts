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
});
