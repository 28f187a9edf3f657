import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { assertErrorResponse } from '../helpers/errors.js';
import { eventually, startMoneyWorld, type MoneyWorld } from '../helpers/money-world.js';

/**
 * Bad input on the money endpoints: a clear 4xx, and the ledger unchanged
 * (no reservation, no lease asked for, no CDR, no transaction).
 */
const MOBILE = '61400123456';
const CDR = {
  sip_call_id: 'bad-input@test',
  customer_trunk_id: 10,
  carrier_trunk_id: 20,
  carrier_gateway_id: 201,
  ani: '61255500100',
  dnis: MOBILE,
  start_time: '2026-01-15T08:30:00Z',
  answer_time: '2026-01-15T08:30:05Z',
  end_time: '2026-01-15T08:31:35Z',
  duration_seconds: 90,
  sip_response_code: 200,
};
const ENDPOINTS: Record<string, { valid: Record<string, unknown>; required: string; typed: [string, unknown] }> = {
  '/api/opensips/call/admit': {
    valid: { customer_trunk_id: 10, dnis: MOBILE, call_id: 'bad-input@test' },
    required: 'customer_trunk_id',
    typed: ['customer_trunk_id', '10'],
  },
  '/api/opensips/call/release': { valid: { call_id: 'bad-input@test' }, required: 'call_id', typed: ['call_id', 5] },
  '/api/call-admit/check': {
    valid: { entity_type: 'customer', entity_id: 1, estimated_cost: '0.10' },
    required: 'estimated_cost',
    typed: ['estimated_cost', 0.1],
  },
  '/api/cdrs/ingest': { valid: CDR, required: 'end_time', typed: ['duration_seconds', '90'] },
};

describe('money endpoints: bad input', () => {
  let world: MoneyWorld;
  const post = (path: string, body: unknown) => world.sidecars[0].post(path, body);
  const refused = async (path: string, body: unknown, status: number, message?: RegExp): Promise<void> => {
    assertErrorResponse(await post(path, body), status, message);
  };

  before(async () => {
    world = await startMoneyWorld({ sidecars: 1 });
    assert.equal((await world.control.post('/api/balances/customer/1/balance/credit', { amount: '5.00' })).status, 200);
  });
  after(() => world.stop());

  for (const [path, { valid, required, typed }] of Object.entries(ENDPOINTS)) {
    it(`${path}: malformed JSON, non-objects, missing and mistyped fields, oversized bodies`, async () => {
      await refused(path, '{"call_id": ', 400, /not valid JSON/);
      await refused(path, '[1]', 400, /JSON object/);
      await refused(path, '', 400, /empty/);
      const missing = { ...valid };
      delete missing[required];
      await refused(path, missing, 400, new RegExp(required));
      await refused(path, { ...valid, [typed[0]]: typed[1] }, 400, new RegExp(typed[0]));
      const big = JSON.stringify({ ...valid, padding: 'x'.repeat(70 * 1024) });
      const reply = await world.sidecars[0].raw(
        `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${big.length}\r\n\r\n${big}`,
      );
      assert.match(reply, /^HTTP\/1\.1 413 /);
    });

    it(`${path}: hostile values get a 4xx, never a 5xx`, async () => {
      const hostile = ['\u0000\u0001', '"; DROP TABLE cdrs; --', '𝔘𝔫𝔦𝔠𝔬𝔡𝔢', 'A'.repeat(5000), -1, 1e308, true, [], {}];
      for (const value of hostile) {
        for (const field of Object.keys(valid)) {
          if (path === '/api/cdrs/ingest' && field === 'ani' && typeof value === 'string' && value.length <= 256) continue; // a withheld caller: billed (below)
          const body = JSON.stringify({ ...valid, [field]: value }).replace(/^\{/, '{"__proto__":{"polluted":true},');
          const response = await post(path, body);
          // call/admit answers 200 for every well-formed request (the contract): a refusal is allowed=false.
          const refusedInBody = path === '/api/opensips/call/admit' && response.status === 200 && response.body.allowed === false;
          assert.ok(
            refusedInBody || (response.status >= 400 && response.status < 500),
            `${path} ${field}=${JSON.stringify(value).slice(0, 30)} gave ${response.status}`,
          );
        }
      }
    });
  }

  it('refuses money that is not a plain non-negative decimal string of at most 6 decimals', async () => {
    for (const amount of ['-1', '1e3', '0.1234567', 'NaN', ' 1', '1,00', '9999999999', '', '0x10']) {
      await refused('/api/call-admit/check', { entity_type: 'customer', entity_id: 1, estimated_cost: amount }, 400, /estimated_cost/);
      await refused('/api/opensips/call/admit', { customer_trunk_id: 10, dnis: MOBILE, estimated_cost: amount }, 400, /estimated_cost/);
    }
    await refused('/api/call-admit/check', { entity_type: 'vendor', entity_id: 1, estimated_cost: '1' }, 400, /entity_type/);
  });

  it('refuses a CDR whose times do not tell one story, or that cannot be rated', async () => {
    await refused(
      '/api/cdrs/ingest',
      { ...CDR, end_time: '2026-01-15T08:29:00Z', answer_time: null, duration_seconds: 0 },
      400,
      /end_time is before start_time/,
    );
    await refused('/api/cdrs/ingest', { ...CDR, answer_time: '2026-01-15T08:40:00Z' }, 400, /answer_time must lie between/);
    await refused('/api/cdrs/ingest', { ...CDR, answer_time: null }, 400, /duration_seconds must be 0/);
    await refused('/api/cdrs/ingest', { ...CDR, duration_seconds: 200 }, 400, /longer than the time/);
    await refused('/api/cdrs/ingest', { ...CDR, start_time: '2026-13-45T99:00:00Z' }, 400, /start_time must be an RFC 3339/);
    await refused('/api/cdrs/ingest', { ...CDR, start_time: '2026-01-15' }, 400, /start_time/);
    // Dates and times that do not exist, which Date.parse would have read as other instants (March 2, the next
    // midnight) and the CDR billed at them: refused as invalid_field, in the common shape and the rarer ones.
    for (const [field, text] of [
      ['start_time', '2026-02-30T08:30:00Z'],
      ['end_time', '2026-04-31T08:31:35Z'],
      ['answer_time', '2026-01-15T24:00:00Z'],
      ['start_time', '2026-02-29 08:30:00.1234Z'],
    ]) {
      const answer = await post('/api/cdrs/ingest', { ...CDR, [field]: text });
      assertErrorResponse(answer, 400, new RegExp(`${field} must be an RFC 3339`));
      assert.equal(answer.body.reason_code, 'invalid_field');
    }
    await refused('/api/cdrs/ingest', { ...CDR, sip_response_code: 99 }, 400, /sip_response_code/);
    // The retail account a CDR names (an access-number call): a positive integer id, nothing else.
    for (const retail of [0, -3, 1.5, '12', 2 ** 60, { id: 1 }])
      await refused('/api/cdrs/ingest', { ...CDR, retail_account_id: retail }, 400, /retail_account_id/);
    await refused('/api/cdrs/ingest', { ...CDR, customer_trunk_id: 999 }, 422, /customer_trunk_id 999/);
    await refused('/api/cdrs/ingest', { ...CDR, dnis: '4420123456' }, 422, /no rate/);
  });

  it('left the ledger as it was', async () => {
    const balance = (await world.control.get('/api/balances/customer/1/balance')).body;
    assert.equal(balance.balance, '5.00');
    assert.equal(balance.reserved, '0.00');
    const transactions = (await world.control.get('/api/balances/customer/1/transactions')).body.data;
    assert.deepEqual(
      transactions.map((row: { transaction_type: string }) => row.transaction_type),
      ['credit'],
    );
    assert.deepEqual((await world.control.get('/api/cdrs/search')).body, []);
    const metrics = await world.sidecars[0].get('/metrics');
    assert.match(metrics.text, /^sidecar_reservations_held 0$/m);
  });

  it('bills a withheld caller, whose ANI is not a number', async () => {
    const ingested = await post('/api/cdrs/ingest', { ...CDR, sip_call_id: 'withheld@test', ani: 'anonymous' });
    assert.equal(ingested.status, 201, JSON.stringify(ingested.body));
    assert.equal((await post('/api/cdrs/ingest', { ...CDR, sip_call_id: 'withheld-2@test', ani: '' })).status, 201);
    // And settled at the centre: a settlement the centre refuses would hold back every round after it.
    await eventually(async () => {
      for (const callId of ['withheld@test', 'withheld-2@test']) {
        const found = (await world.control.get(`/api/cdrs/search?sip_call_id=${callId}`)).body as { ani: string }[];
        assert.deepEqual(
          found.map((cdr) => cdr.ani),
          [''],
          callId,
        );
      }
    });
  });

  it('still answers valid requests afterwards', async () => {
    for (const [path, { valid }] of Object.entries(ENDPOINTS)) {
      const response = await post(path, valid);
      assert.ok(response.status === 200 || response.status === 201, `${path}: ${response.status} ${JSON.stringify(response.body)}`);
    }
  });
});
