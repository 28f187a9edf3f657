import assert from 'node:assert/strict';
import { it } from 'node:test';
import { Decimal } from '../../src/core/money/decimal.js';
import { MAX_MICRO_TEXT, parseMicro } from '../../src/core/money/micro.js';
import { leaseGrant, leaseShare, nodeHeadroom } from '../../sync/ledger/settlement.js';
import { plain, toUnits } from '../../sync/ledger/units.js';

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

/**
 * With the number of active nodes and the asking node's call size known: up to the node's share of the headroom
 * in whole calls, and only the waiting call's need once the share is under SCARCE_CALLS_PER_NODE calls.
 */
it('shares an entity’s headroom among the active nodes, in whole calls, and call by call when it is short', () => {
  const cases: [want: string, need: string, perCall: string | null, headroom: string, nodes: number, grant: string, short: boolean][] = [
    ['10', '1', null, '100', 3, '10', false], // plenty: the whole want (the node's demand)
    ['50', '1', null, '100', 3, '33', false], // more than its share wanted: its share, 33.33 in whole calls
    ['50', '1.5', null, '100', 3, '33', false], // 22 whole calls of 1.5
    ['16', '1', null, '10', 3, '1', true], // 3.33 calls per node left: only the waiting call, and recall the others' spare
    ['16', '0', '1', '10', 3, '0', false], // a top-up then gets nothing (no call waits: nothing to recall for)
    ['16', '0', '1', '100', 3, '16', false], // a top-up with plenty
    ['10', '0', null, '3', 3, '1.5', false], // a top-up of an older node (no call size): half, as before
    ['10', '2', null, '1.5', 3, '1.5', true], // not even the need is left: all there is, and recall
    ['10', '1', null, '0', 3, '0', true],
    ['16', '1', null, '10', 1, '10', false], // a single active node: no one to keep any for
    ['16', '1', null, '10', 0, '10', false], // none registered as active (all draining): as one
  ];
  for (const [want, need, perCall, headroom, nodes, grant, short] of cases) {
    const share = leaseShare(new Decimal(want), need, new Decimal(headroom), { nodes, perCall });
    assert.deepEqual(
      [share.grant.toFixed(), share.short],
      [grant, short],
      `want ${want}, need ${need}, per call ${perCall}, headroom ${headroom}, ${nodes} nodes`,
    );
  }
});

/** The headroom a node is told: cut to whole micro-units, and within what the node reads (9 integer digits), either side of zero. */
it('tells a node a headroom it can read', () => {
  const cases: [headroom: string, told: string][] = [
    ['12.3456789', '12.345678'],
    ['999999999.999999', MAX_MICRO_TEXT],
    ['1000000000', MAX_MICRO_TEXT],
    ['999999999999999.999999999999', MAX_MICRO_TEXT],
    ['-5.5', '-5.5'],
    ['-1000000000.5', `-${MAX_MICRO_TEXT}`], // a postpaid account far over its limit: none, as any deficit
  ];
  for (const [headroom, told] of cases) {
    const text = plain(nodeHeadroom(toUnits(headroom)));
    assert.equal(text, told, headroom);
    assert.ok(Number.isFinite(parseMicro(text)), `the node reads ${text}`);
  }
  // One micro-unit more than the maximum is what the node could not read.
  assert.ok(Number.isNaN(parseMicro('1000000000')));
});
