import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Decimal } from '../../src/core/money/decimal.js';
import { parseDeltaBatch } from '../../src/core/protocol/deltas.js';
import type { LeaseAsk, LeaseState } from '../../src/core/protocol/node-sync.js';
import { debitRecallingLeases } from '../../sync/ledger/debit-recall.js';
import { LeaseRecalls } from '../../sync/ledger/lease-recall.js';
import type { LedgerStore } from '../../sync/ledger/store.js';

/**
 * The centre's side of money on the live channel (sync/ledger/lease-recall.ts, debit-recall.ts): which node is
 * told what, when a held ask is woken, and how a debit waits for recalled lease.
 */
const ACCOUNT = { entity_type: 'customer' as const, entity_id: 7 };

const ask = (giveBack: string): LeaseAsk => ({ ...ACCOUNT, want: '0', give_back: giveBack });
const state = (granted: string): LeaseState => ({ ...ACCOUNT, granted, headroom: '0' });
/** Lets the wake the signals queued (setImmediate) run. */
const woken = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('lease recalls on the channel', () => {
  it('recalls a holder at once, wakes its held ask, and refreshes the short node when lease comes back', async () => {
    const recalls = new LeaseRecalls();
    let wakes = 0;
    const listener = recalls.listen('node-1', () => wakes++);
    assert.equal(recalls.recallNow('node-1', 'customer', 7, '5.00'), true);
    recalls.want('node-2', 'customer', 7);
    assert.equal(recalls.recalling('customer', 7), true);
    await woken();
    assert.equal(wakes, 1);
    recalls.unlisten('node-1', listener);
    assert.deepEqual(recalls.takeSignals('node-1'), { recall: [ACCOUNT], refresh: [] });
    assert.equal(recalls.takeSignals('node-1'), undefined, 'taken once');
    assert.deepEqual(recalls.take('node-1'), [], 'the channel carried it: the round answer does not again');

    recalls.roundApplied('node-1', [ask('4.00')], [state('1.00')]);
    assert.equal(recalls.recalling('customer', 7), false);
    assert.deepEqual(recalls.takeSignals('node-2'), { recall: [], refresh: [ACCOUNT] });
    assert.equal(recalls.takeSignals('node-1'), undefined, 'the node that gave back is not refreshed');
  });

  it('tells a node that does not follow the channel at its next round instead', () => {
    const recalls = new LeaseRecalls();
    recalls.recallNow('node-3', 'customer', 7, '2.00');
    assert.deepEqual(recalls.take('node-3'), [ACCOUNT]);
    assert.equal(recalls.takeSignals('node-3'), undefined, 'the round answer carried it: the channel does not again');
  });

  it('does not recall again a node that had nothing to spare, until its lease moves', () => {
    const recalls = new LeaseRecalls();
    recalls.recallNow('node-1', 'customer', 7, '3.00');
    recalls.want('node-2', 'customer', 7);
    recalls.roundApplied('node-1', [ask('0')], [state('3.00')]);
    assert.deepEqual(recalls.takeSignals('node-2')?.refresh, [ACCOUNT], 'the last recalled node answered: the short node learns');
    recalls.takeSignals('node-1');
    assert.equal(recalls.recallNow('node-1', 'customer', 7, '3.00'), false, 'its calls hold it all');
    assert.equal(recalls.recallNow('node-1', 'customer', 7, '3.00', true), true, 'a debit asks anyway');
    assert.equal(recalls.recallNow('node-1', 'customer', 7, '6.00'), true, 'leased more since');
  });

  it('does not take a round built before the node acted on the recall for its answer', () => {
    const recalls = new LeaseRecalls();
    recalls.recallNow('node-1', 'customer', 7, '3.00', true);
    // In flight as the recall was made: it names the entity, gives nothing back, and says it answers no recall.
    recalls.roundApplied('node-1', [{ ...ask('0'), answers_recall: false }], [state('3.00')]);
    assert.equal(recalls.recalling('customer', 7), true, 'still waiting for the answer');
    assert.equal(recalls.returns, 0, 'a waiting debit is not told that nothing came back');
    recalls.roundApplied('node-1', [{ ...ask('3.00'), answers_recall: true }], [state('0')]);
    assert.equal(recalls.recalling('customer', 7), false);
    assert.equal(recalls.returns, 1);
  });

  it('stops waiting for a recalled node that does not answer (its channel is down, or it died)', () => {
    const realNow = Date.now;
    let now = realNow();
    Date.now = () => now;
    try {
      const recalls = new LeaseRecalls();
      recalls.recallNow('node-1', 'customer', 7, '5.00');
      assert.equal(recalls.recalling('customer', 7), true);
      now += 2_000;
      assert.equal(recalls.recalling('customer', 7), false, 'a short call elsewhere no longer waits for it');
    } finally {
      Date.now = realNow;
    }
  });

  it('refreshes the holders and the waiting nodes of a balance an operator changed', () => {
    const recalls = new LeaseRecalls();
    recalls.want('node-3', 'customer', 7);
    recalls.balanceChanged('customer', 7, ['node-1']);
    assert.deepEqual(recalls.takeSignals('node-1'), { recall: [], refresh: [ACCOUNT] });
    assert.deepEqual(recalls.takeSignals('node-3'), { recall: [], refresh: [ACCOUNT] });
    assert.equal(recalls.takeSignals('node-2'), undefined);
  });

  it('wakes an older held ask of a node when a newer one comes, and marks it superseded', () => {
    const recalls = new LeaseRecalls();
    let oldWoken = false;
    const old = recalls.listen('node-1', () => (oldWoken = true));
    const fresh = recalls.listen('node-1', () => undefined);
    assert.deepEqual([oldWoken, old.superseded, fresh.superseded], [true, true, false]);
  });

  it('holds back a waiting debit’s amount from new grants until it is released', () => {
    const recalls = new LeaseRecalls();
    const release = recalls.withhold('customer', 7, new Decimal('2.50'));
    assert.equal(recalls.withheldFrom('customer', 7).toFixed(2), '2.50');
    release();
    assert.equal(recalls.withheldFrom('customer', 7).toFixed(2), '0.00');
  });
});

describe('a debit waiting for recalled lease', () => {
  const ledgerHolding = (holders: { node: string; amount: string }[]): LedgerStore =>
    ({ leasesOf: () => Promise.resolve(holders.map((holder) => ({ ...holder, updated_at: '' }))) }) as unknown as LedgerStore;
  const short = new Error('held in leases');
  const held = (error: unknown) => (error === short ? { entityType: 'customer' as const, entityId: 7, amount: new Decimal('4.00') } : null);

  it('recalls every holder, withholds the amount, and succeeds once lease comes back', async () => {
    const recalls = new LeaseRecalls();
    let attempts = 0;
    let withheldSeen = '';
    const done = debitRecallingLeases(
      { recalls, ledger: ledgerHolding([{ node: 'node-1', amount: '5.00' }]) },
      () => {
        attempts++;
        if (attempts === 1) return Promise.reject(short);
        withheldSeen = recalls.withheldFrom('customer', 7).toFixed(2);
        return Promise.resolve('debited');
      },
      held,
    );
    await woken();
    assert.deepEqual(recalls.takeSignals('node-1'), { recall: [ACCOUNT], refresh: [] });
    recalls.roundApplied('node-1', [ask('5.00')], [state('0')]);
    assert.equal(await done, 'debited');
    assert.deepEqual([attempts, withheldSeen], [2, '4.00']);
    assert.equal(recalls.withheldFrom('customer', 7).toFixed(2), '0.00', 'released once done');
  });

  it('is refused at once when nothing is leased, and once every recalled node had nothing to spare', async () => {
    const nothingLeased = debitRecallingLeases(
      { recalls: new LeaseRecalls(), ledger: ledgerHolding([]) },
      () => Promise.reject(short),
      held,
    );
    await assert.rejects(nothingLeased, (error) => error === short);

    const recalls = new LeaseRecalls();
    let attempts = 0;
    const refused = debitRecallingLeases(
      { recalls, ledger: ledgerHolding([{ node: 'node-1', amount: '5.00' }]) },
      () => {
        attempts++;
        return Promise.reject(short);
      },
      held,
      60_000,
    );
    await woken();
    recalls.roundApplied('node-1', [ask('0')], [state('5.00')]);
    await assert.rejects(refused, (error) => error === short);
    assert.equal(attempts, 2, 'tried again once the recalled node answered, then refused without waiting out the minute');
    assert.equal(recalls.withheldFrom('customer', 7).toFixed(2), '0.00');
  });
});

describe('money signals on the wire', () => {
  const batch = { deltas: [], last_seq: 3, snapshot_required: false };

  it('reads a batch with and without them, and refuses a malformed one whole', () => {
    assert.deepEqual(parseDeltaBatch(batch), batch);
    const money = { recall: [ACCOUNT], refresh: [{ entity_type: 'retail', entity_id: 2 }] };
    assert.deepEqual(parseDeltaBatch({ ...batch, money }), { ...batch, money });
    for (const bad of [
      null,
      { recall: [] },
      { recall: [{ entity_type: 'vendor', entity_id: 1 }], refresh: [] },
      { recall: [{ entity_type: 'customer', entity_id: 0 }], refresh: [] },
    ])
      assert.equal(parseDeltaBatch({ ...batch, money: bad }), null, JSON.stringify(bad));
  });
});
