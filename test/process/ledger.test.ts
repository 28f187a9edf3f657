import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { trunk10Settlement } from '../helpers/cdrs.js';
import { forEachEngine, startCentre, type Centre } from '../helpers/engines.js';
import type { SidecarProcess } from '../helpers/sidecar.js';

/** Balances at the centre, over HTTP against the real control plane, on each engine of its store. */

/** A node's money round carries the secret the centre answered when the node was created. */
const bearer = (secret: string): Record<string, string> => ({ authorization: `Bearer ${secret}` });

forEachEngine('ledger', (engine) => {
  let centre: Centre;
  let control: SidecarProcess;
  let prepaid: number;
  let postpaid: number;
  let carrier: number;

  /** A customer account made through the admin API, its portal login `username`: its id. */
  const newAccount = async (name: string, username: string, terms: Record<string, unknown>): Promise<number> => {
    const made = await control.send('POST', '/api/customer-accounts', { name, username, password: `${username}-pass-1`, ...terms });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    return made.body.id as number;
  };

  before(async () => {
    centre = await startCentre(engine, 'ledger');
    control = centre.control;
    prepaid = await newAccount('Prepaid Pty', 'prepaid', { currency: 'AUD', billing_mode: 'prepaid' });
    postpaid = await newAccount('Postpaid Ltd', 'postpaid', { currency: 'USD', billing_mode: 'postpaid', credit_limit: '5000.00' });
    carrier = (await control.send('POST', '/api/carrier-trunks', { name: 'Carrier', currency: 'AUD' })).body.id;
  });
  after(() => centre.stop());

  const balance = async (type: string, id: number): Promise<any> => (await control.get(`/api/balances/${type}/${id}/balance`)).body;
  const apply = (type: string, id: number, operation: string, body: unknown) =>
    control.send('POST', `/api/balances/${type}/${id}/balance/${operation}`, body);

  it('starts at zero and keeps prepaid funds to the cent', async () => {
    // Before the first transaction the balance is shown as the contract's Balance: an id, a time, two decimals.
    const opened = await balance('customer', prepaid);
    assert.equal(opened.balance, '0.00');
    assert.equal(opened.reserved, '0.00');
    assert.equal(opened.headroom, '0.00');
    assert.ok(Number.isSafeInteger(opened.id) && opened.id > 0, `id ${String(opened.id)}`);
    assert.ok(!Number.isNaN(Date.parse(opened.updated_at)), `updated_at ${String(opened.updated_at)}`);
    assert.equal((await balance('customer', prepaid)).id, opened.id, 'the balance read again is the same balance');
    assert.deepEqual((await apply('customer', prepaid, 'credit', { amount: '1000.00', description: 'Top-up January 2026' })).body, {
      message: 'credit applied',
    });
    assert.deepEqual(
      (await apply('customer', prepaid, 'debit', { amount: '0.0325', description: 'Call to 61400123456', cdr_id: 12345 })).body,
      { message: 'debit applied' },
    );
    assert.deepEqual((await apply('customer', prepaid, 'adjust', { amount: '-25.00', description: 'Write-off' })).body, {
      message: 'adjustment applied',
    });
    const state = await balance('customer', prepaid);
    // 1000.00 - 0.0325 - 25.00 = 974.9675, exactly
    assert.deepEqual(
      [state.balance, state.headroom, state.billing_mode, state.currency, state.credit_limit],
      ['974.9675', '974.9675', 'prepaid', 'AUD', null],
    );
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
      // 974.9675 + this is 10^15 and more: past the 15 integer digits the ledger holds.
      ['credit', { amount: '999999999999999.99' }, /below 10\^15/],
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

  it('keeps a balance below 10^15 either side of zero: a credit or adjustment past it is refused, changing nothing', async () => {
    const big = await newAccount('Big Pty', 'big', { currency: 'AUD', billing_mode: 'prepaid' });
    const refuse = async (operation: string, amount: string, balanceText: string) => {
      const before = await balance('customer', big);
      const refused = await apply('customer', big, operation, { amount });
      assert.equal(refused.status, 400, JSON.stringify(refused.body));
      assert.equal(refused.body.reason_code, 'invalid_field');
      assert.equal(
        refused.body.error,
        `amount: the balance would be ${balanceText}: the ledger holds balances below 10^15 either side of zero`,
      );
      assert.deepEqual(await balance('customer', big), before);
    };
    assert.equal((await apply('customer', big, 'credit', { amount: '999999999999999.99' })).status, 200);
    assert.equal((await balance('customer', big)).balance, '999999999999999.99');
    await refuse('credit', '0.01', '1000000000000000.00');
    await refuse('adjust', '0.01', '1000000000000000.00');
    // Back towards zero is taken, and past it as far as the ledger holds.
    assert.equal((await apply('customer', big, 'adjust', { amount: '-999999999999999.99' })).status, 200);
    assert.equal((await apply('customer', big, 'adjust', { amount: '-999999999999999.99' })).status, 200);
    assert.equal((await balance('customer', big)).balance, '-999999999999999.99');
    await refuse('adjust', '-0.01', '-1000000000000000.00');
  });

  it('lists transactions newest first with balance_after, paginated', async () => {
    const page = (await control.get(`/api/balances/customer/${prepaid}/transactions?page=1&page_size=2`)).body;
    assert.deepEqual(page.meta, { page: 1, page_size: 2, total: 3 });
    assert.deepEqual(
      page.data.map((row: { transaction_type: string; amount: string; balance_after: string }) => [
        row.transaction_type,
        row.amount,
        row.balance_after,
      ]),
      [
        ['adjustment', '-25.00', '974.9675'],
        ['debit', '0.0325', '999.9675'],
      ],
    );
    assert.equal(page.data[1].cdr_id, 12345);
    const carrierState = await balance('carrier', carrier);
    assert.deepEqual([carrierState.entity_type, carrierState.billing_mode, carrierState.headroom], ['carrier', 'postpaid', '0.00']);
  });

  it("answers a lease ask for an entity it does not know with no lease, rather than refuse the node's round", async () => {
    const node = await control.send('POST', '/api/opensips-nodes', {
      hostname: 'node-unknown-entity',
      mi_socket_address: 'http://127.0.0.1:9/mi',
    });
    assert.equal(node.status, 201, JSON.stringify(node.body));
    await control.send('POST', `/api/balances/customer/${postpaid}/balance/credit`, { amount: '1.00' }); // a payment: usage 1999.50
    const round = await control.send(
      'POST',
      '/api/ledger/node-sync',
      {
        node: 'node-unknown-entity',
        seq: 1,
        settlements: [],
        leases: [
          { entity_type: 'customer', entity_id: 999_999, want: '5.00', give_back: '0' },
          { entity_type: 'customer', entity_id: postpaid, want: '0', give_back: '0' },
        ],
      },
      bearer(node.body.node_secret),
    );
    assert.equal(round.status, 200, JSON.stringify(round.body));
    assert.deepEqual(round.body.leases, [
      { entity_type: 'customer', entity_id: 999_999, granted: '0', headroom: '0' },
      { entity_type: 'customer', entity_id: postpaid, granted: '0', headroom: '3000.5' },
    ]);
  });

  it("records a settled CDR for an account it does not know without billing it, rather than refuse the node's round", async () => {
    const node = await control.send('POST', '/api/opensips-nodes', {
      hostname: 'node-unbilled',
      mi_socket_address: 'http://127.0.0.1:9/mi',
    });
    assert.equal(node.status, 201, JSON.stringify(node.body));
    const cdr = trunk10Settlement('unknown-account@test', 73, '0.0325', {}, { customer_account_id: 999_999 });
    const round = await control.send(
      'POST',
      '/api/ledger/node-sync',
      { node: 'node-unbilled', seq: 1, settlements: [cdr], leases: [] },
      bearer(node.body.node_secret),
    );
    assert.equal(round.status, 200, JSON.stringify(round.body));
    assert.deepEqual(round.body, {
      settled: ['unknown-account@test'],
      unbilled: ['unknown-account@test'],
      leases: [],
      lease_valid_seconds: 900,
    });
    const found = (await control.get('/api/cdrs/search?sip_call_id=unknown-account%40test')).body;
    assert.equal(found.length, 1);
    assert.equal(found[0].customer_account_id, 999_999);
  });

  it("refuses a node's round with a CDR time that does not exist, recording nothing", async () => {
    const node = await control.send('POST', '/api/opensips-nodes', {
      hostname: 'node-bad-time',
      mi_socket_address: 'http://127.0.0.1:9/mi',
    });
    assert.equal(node.status, 201, JSON.stringify(node.body));
    // Date.parse reads 2026-02-30 as 2 March: the centre would bill a time the switch never wrote.
    for (const [field, value] of [
      ['start_time', '2026-02-30T08:30:00.000Z'],
      ['end_time', '2026-01-15T24:00:00.000Z'],
      ['created_at', 'Thu, 15 Jan 2026 08:31:19 GMT'],
    ]) {
      const cdr = { ...trunk10Settlement(`bad-time-${field}@test`, 73, '0.0325'), [field]: value };
      const round = await control.send(
        'POST',
        '/api/ledger/node-sync',
        { node: 'node-bad-time', seq: 1, settlements: [cdr], leases: [] },
        bearer(node.body.node_secret),
      );
      assert.equal(round.status, 400, `${field} ${value}: ${JSON.stringify(round.body)}`);
      assert.equal(round.body.reason_code ?? round.body.code, 'invalid_field', JSON.stringify(round.body));
      assert.match(round.body.error, new RegExp(`settlements\\[0\\]\\.${field}`));
      const found = (await control.get(`/api/cdrs/search?sip_call_id=bad-time-${field}%40test`)).body;
      assert.deepEqual(found, [], 'nothing recorded');
    }
  });

  it("bills a resend once when its node spells the call's start another RFC 3339 way, and keeps one spelling", async () => {
    const node = await control.send('POST', '/api/opensips-nodes', {
      hostname: 'node-spelling',
      mi_socket_address: 'http://127.0.0.1:9/mi',
    });
    assert.equal(node.status, 201, JSON.stringify(node.body));
    // A CDR's identity is its Call-ID and start compared as text (contract note 60): the same instant with an
    // offset and no fraction is the same call, not a second one to bill.
    const account = await newAccount('Spelling Pty', 'spelling', { currency: 'AUD', billing_mode: 'postpaid', credit_limit: '100.00' });
    const extra = { customer_account_id: account };
    const written = trunk10Settlement('spelling@test', 73, '0.0325', {}, extra);
    const instant = Date.parse(written.start_time as string);
    const asOffset = new Date(instant + 2 * 3_600_000).toISOString().replace(/\.\d{3}Z$/, '+02:00');
    assert.notEqual(asOffset, written.start_time);
    assert.equal(Date.parse(asOffset), instant);
    const balances: string[] = [(await balance('customer', account)).balance];
    for (const [seq, start] of [
      [1, written.start_time],
      [2, asOffset],
    ] as const) {
      const round = await control.send(
        'POST',
        '/api/ledger/node-sync',
        { node: 'node-spelling', seq, settlements: [{ ...written, start_time: start }], leases: [] },
        bearer(node.body.node_secret),
      );
      assert.equal(round.status, 200, JSON.stringify(round.body));
      balances.push((await balance('customer', account)).balance);
    }
    const found = (await control.get('/api/cdrs/search?sip_call_id=spelling%40test')).body;
    assert.deepEqual(
      found.map((row: { start_time: string }) => row.start_time),
      [written.start_time],
      'one CDR, its start in one spelling',
    );
    assert.notEqual(balances[1], balances[0], 'billed');
    assert.equal(balances[2], balances[1], 'billed once');
  });

  it('refuses a lease ask whose answers_recall is not a boolean, changing nothing', async () => {
    const node = await control.send('POST', '/api/opensips-nodes', {
      hostname: 'node-bad-recall',
      mi_socket_address: 'http://127.0.0.1:9/mi',
    });
    assert.equal(node.status, 201, JSON.stringify(node.body));
    for (const hostile of ['yes', 1, { $ne: null }, []]) {
      const round = await control.send(
        'POST',
        '/api/ledger/node-sync',
        {
          node: 'node-bad-recall',
          seq: 1,
          settlements: [],
          leases: [{ entity_type: 'customer', entity_id: prepaid, want: '1.00', give_back: '0', answers_recall: hostile }],
        },
        bearer(node.body.node_secret),
      );
      assert.equal(round.status, 400, `${JSON.stringify(hostile)}: ${JSON.stringify(round.body)}`);
      assert.match(round.body.error, /leases\[0\]\.answers_recall/);
    }
    // The refused rounds took nothing: the same seq with a well-formed ask is this node's first round.
    const first = await control.send(
      'POST',
      '/api/ledger/node-sync',
      {
        node: 'node-bad-recall',
        seq: 1,
        settlements: [],
        leases: [{ entity_type: 'customer', entity_id: prepaid, want: '0', give_back: '0', answers_recall: false }],
      },
      bearer(node.body.node_secret),
    );
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(first.body.leases[0].granted, '0', 'no lease was granted by a refused round');
  });

  it('settles several CDRs of one account in a round: one debit row for them all, named by each CDR with its own charge', async () => {
    const node = await control.send('POST', '/api/opensips-nodes', { hostname: 'node-batch', mi_socket_address: 'http://127.0.0.1:9/mi' });
    assert.equal(node.status, 201);
    const account = await newAccount('Batch Pty', 'batch', { currency: 'AUD', billing_mode: 'prepaid' });
    await apply('customer', account, 'credit', { amount: '10.00' });
    const grant = await control.send(
      'POST',
      '/api/ledger/node-sync',
      {
        node: 'node-batch',
        seq: 1,
        settlements: [],
        leases: [{ entity_type: 'customer', entity_id: account, want: '4.00', give_back: '0' }],
      },
      bearer(node.body.node_secret),
    );
    assert.deepEqual(grant.body.leases, [{ entity_type: 'customer', entity_id: account, granted: '4', headroom: '6' }]);
    const cdr = (n: number, charge: string) => ({
      sip_call_id: `batch-${n}@test`,
      node_cdr_id: n,
      customer_trunk_id: 10,
      customer_account_id: account,
      carrier_trunk_id: 20,
      carrier_gateway_id: 201,
      ani: '61255500100',
      dnis: '61400123456',
      start_time: '2026-01-15T08:30:00.000Z',
      answer_time: '2026-01-15T08:30:05.000Z',
      end_time: '2026-01-15T08:31:18.000Z',
      duration_seconds: 73,
      sip_response_code: 200,
      billable_duration_customer: 78,
      billable_duration_vendor: 120,
      customer_rate_deck_id: 1,
      carrier_rate_deck_id: 101,
      customer_cost: charge,
      customer_currency: 'AUD',
      customer_decimal_precision: 4,
      customer_rounding_direction: 'standard',
      vendor_cost: '0.0400',
      vendor_currency: 'AUD',
      vendor_decimal_precision: 4,
      vendor_rounding_direction: 'up',
      account_charge: charge,
      account_currency: 'AUD',
      created_at: '2026-01-15T08:31:19.000Z',
    });
    // 1.2345 + 2.5000 + 0.0001 spent out of the 4.00 lease; then 0.2654 of it handed back.
    const round = await control.send(
      'POST',
      '/api/ledger/node-sync',
      {
        node: 'node-batch',
        seq: 2,
        settlements: [cdr(1, '1.2345'), cdr(2, '2.5000'), cdr(3, '0.0001')],
        leases: [{ entity_type: 'customer', entity_id: account, want: '0', give_back: '0.2654' }],
      },
      bearer(node.body.node_secret),
    );
    assert.equal(round.status, 200, JSON.stringify(round.body));
    assert.deepEqual(round.body.leases, [{ entity_type: 'customer', entity_id: account, granted: '0', headroom: '6.2654' }]);
    const rows = (await control.get(`/api/balances/customer/${account}/transactions`)).body.data as {
      id: number;
      transaction_type: string;
      amount: string;
      balance_after: string;
      description: string;
      call_id: string | null;
      cdr_id: number | null;
    }[];
    assert.deepEqual(rows.map((row) => [row.transaction_type, row.amount, row.balance_after, row.description, row.cdr_id]).reverse(), [
      ['credit', '10.00', '10.00', null, null],
      ['reserve', '4.00', '10.00', 'credit lease granted to node node-batch', null],
      ['debit', '3.7346', '6.2654', '3 calls (node node-batch, round 2)', null],
      ['release', '0.2654', '6.2654', 'credit lease returned by node node-batch', null],
    ]);
    const debit = rows.find((row) => row.transaction_type === 'debit')!;
    const cdrs = (await control.get(`/api/cdrs/search?customer_account_id=${account}`)).body as {
      sip_call_id: string;
      account_charge: string;
      debit_transaction_id: number;
    }[];
    assert.deepEqual(cdrs.map((row) => [row.sip_call_id, row.account_charge, row.debit_transaction_id]).sort(), [
      ['batch-1@test', '1.2345', debit.id],
      ['batch-2@test', '2.5000', debit.id],
      ['batch-3@test', '0.0001', debit.id],
    ]);
    const state = await balance('customer', account);
    assert.deepEqual([state.balance, state.reserved, state.headroom], ['6.2654', '0.0000', '6.2654']);
  });
});
