import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SidecarProcess } from './helpers/sidecar.js';

/** Balances at the centre, over HTTP against the real control plane. */

describe('ledger', () => {
  let control: SidecarProcess;
  let prepaid: number;
  let postpaid: number;
  let carrier: number;

  before(async () => {
    control = await SidecarProcess.startControlPlane();
    prepaid = (await control.send('POST', '/api/customer-accounts', { name: 'Prepaid Pty', currency: 'AUD', billing_mode: 'prepaid' })).body.id;
    postpaid = (await control.send('POST', '/api/customer-accounts', { name: 'Postpaid Ltd', currency: 'USD', billing_mode: 'postpaid', credit_limit: '5000.00' })).body.id;
    carrier = (await control.send('POST', '/api/carrier-trunks', { name: 'Carrier', currency: 'AUD' })).body.id;
  });
  after(() => control.kill());

  const balance = async (type: string, id: number): Promise<any> => (await control.get(`/api/balances/${type}/${id}/balance`)).body;
  const apply = (type: string, id: number, operation: string, body: unknown) => control.send('POST', `/api/balances/${type}/${id}/balance/${operation}`, body);

  it('starts at zero and keeps prepaid funds to the cent', async () => {
    assert.deepEqual((await balance('customer', prepaid)).balance, '0');
    assert.deepEqual((await apply('customer', prepaid, 'credit', { amount: '1000.00', description: 'Top-up January 2026' })).body, { message: 'credit applied' });
    assert.deepEqual((await apply('customer', prepaid, 'debit', { amount: '0.0325', description: 'Call to 61400123456', cdr_id: 12345 })).body, { message: 'debit applied' });
    assert.deepEqual((await apply('customer', prepaid, 'adjust', { amount: '-25.00', description: 'Write-off' })).body, { message: 'adjustment applied' });
    const state = await balance('customer', prepaid);
    // 1000.00 - 0.0325 - 25.00 = 974.9675, exactly
    assert.deepEqual([state.balance, state.headroom, state.billing_mode, state.currency, state.credit_limit], ['974.9675', '974.9675', 'prepaid', 'AUD', null]);
  });

  it('keeps postpaid usage against the credit limit', async () => {
    await apply('customer', postpaid, 'debit', { amount: '2500.50' });
    await apply('customer', postpaid, 'credit', { amount: '500.00', description: 'Payment' });
    const state = await balance('customer', postpaid);
    // usage 2500.50 - 500.00 = 2000.50; headroom 5000.00 - 2000.50 = 2999.50
    assert.deepEqual([state.balance, state.headroom, state.currency], ['2000.50', '2999.50', 'USD']);
  });

  it('refuses a prepaid debit beyond the balance, changing nothing', async () => {
    const before = await balance('customer', prepaid);
    const refused = await apply('customer', prepaid, 'debit', { amount: '974.9676' });
    assert.equal(refused.status, 400);
    assert.match(refused.body.error, /insufficient balance: 974.9675 available/);
    assert.deepEqual(await balance('customer', prepaid), before);
  });

  it('refuses bad amounts and unknown entities with a clear 4xx, changing nothing', async () => {
    const before = await balance('customer', prepaid);
    for (const [operation, body, pattern] of [
      ['credit', { amount: 10 }, /decimal string/],
      ['credit', { amount: '1e3' }, /decimal string/],
      ['credit', { amount: '-5.00' }, /positive/],
      ['debit', { amount: '0.00' }, /positive/],
      ['adjust', { amount: '0' }, /zero/],
      ['credit', {}, /decimal string/],
      ['credit', { amount: '1.00', cdr_id: 'x' }, /cdr_id/],
      ['credit', { amount: '1'.repeat(20) }, /decimal string/],
    ] as const) {
      const response = await apply('customer', prepaid, operation, body);
      assert.equal(response.status, 400, `${operation} ${JSON.stringify(body)}`);
      assert.match(response.body.error, pattern);
    }
    assert.equal((await apply('customer', 999_999, 'credit', { amount: '1.00' })).status, 404);
    assert.equal((await apply('vendor', prepaid, 'credit', { amount: '1.00' })).status, 400);
    assert.equal((await control.get('/api/balances/customer/abc/balance')).status, 400);
    assert.equal((await apply('customer', prepaid, 'credit', '{"amount":')).status, 400);
    assert.deepEqual(await balance('customer', prepaid), before);
  });

  it('lists transactions newest first with balance_after, paginated', async () => {
    const page = (await control.get(`/api/balances/customer/${prepaid}/transactions?page=1&page_size=2`)).body;
    assert.deepEqual(page.meta, { page: 1, page_size: 2, total: 3 });
    assert.deepEqual(page.data.map((row: { transaction_type: string; amount: string; balance_after: string }) => [row.transaction_type, row.amount, row.balance_after]), [
      ['adjustment', '-25.00', '974.9675'],
      ['debit', '0.0325', '999.9675'],
    ]);
    assert.equal(page.data[1].cdr_id, 12345);
    const carrierState = await balance('carrier', carrier);
    assert.deepEqual([carrierState.entity_type, carrierState.billing_mode, carrierState.headroom], ['carrier', 'postpaid', '0.00']);
  });
});
