import assert from 'node:assert/strict';
import { it } from 'node:test';
import { Decimal } from '../../src/core/money/decimal.js';
import { leaseGrant } from '../../sync/ledger/settlement.js';

/** The centre's share of an entity's headroom per ask: the whole want when there is plenty, never more than half beyond a call's need when there is not. */
it('grants a lease ask by want, need and headroom', () => {
  const cases: [want: string, need: string | null, headroom: string, grant: string][] = [
    ['10', '1.5', '1000', '10'], // plenty: the whole want
    ['10', null, '3', '3'], // a node that sends no need: up to the whole headroom, as before
    ['10', '1.5', '3', '1.5'], // half the headroom is 1.5: the call's need
    ['10', '0.5', '3', '1.5'], // half the headroom, more than the need
    ['10', '0', '3', '1.5'], // a top-up no call waits on: half
    ['10', '2', '1.5', '1.5'], // not even the need is left: all there is (the call may fit in less)
    ['1', '0.5', '3', '1'], // never more than wanted
    ['10', '1', '0', '0'],
    ['10', '1', '-2', '0'], // a postpaid account over its limit
  ];
  for (const [want, need, headroom, grant] of cases) {
    assert.equal(
      leaseGrant(new Decimal(want), need, new Decimal(headroom)).toFixed(),
      grant,
      `want ${want}, need ${need}, headroom ${headroom}`,
    );
  }
});
