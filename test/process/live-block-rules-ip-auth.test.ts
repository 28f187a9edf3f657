import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startMoneyWorld, type MoneyWorld } from '../helpers/money-world.js';
import { admin, allCaughtUp, auth, onEvery, routedCarrier, TRUNK_10_SOURCE } from '../helpers/live-nodes.js';

/**
 * Block rules and trunk IP auth changed live on real sidecars (issue 18). A node applies these deltas without
 * rebuilding its indexes: block rules through an overlay on the built rule trie, CIDRs through chunked rows and
 * an overlay on the CIDR index (docs/decisions.md). What a call is answered must be what the rows now say:
 * rules of the snapshot's trie switched off and on, rules created, edited and deleted, the deeper rule deciding,
 * carrier rules taking a carrier out of routing; networks added, moved and deleted, and a trunk's networks
 * leaving and coming back with the trunk's status.
 */

describe('live changes to block rules and trunk IP auth, on two sidecars', () => {
  let world: MoneyWorld;

  before(async () => {
    world = await startMoneyWorld({ sidecars: 2 });
    await allCaughtUp(world);
  });
  after(async () => {
    await world.stop();
  });

  const refusal = async (dnis: string): Promise<string[]> => {
    const answers = await Promise.all(world.sidecars.map((node) => auth(node, TRUNK_10_SOURCE, dnis)));
    return answers.map((answer) => (answer.allowed === true ? 'allowed' : `${answer.reason_code} ${answer.reject_code}`));
  };
  /** Every node refuses (or allows) `dnis` as `expected` says, once the change has reached it. */
  const everyNode = (dnis: string, expected: string): Promise<void> =>
    onEvery(world.sidecars, async (node) => {
      const answer = await auth(node, TRUNK_10_SOURCE, dnis);
      assert.equal(answer.allowed === true ? 'allowed' : `${answer.reason_code} ${answer.reject_code}`, expected, `${node.url}: ${dnis}`);
    });

  it('block rules created, edited, switched off and on and deleted decide calls at once', async () => {
    // Rule 1 of the snapshot (global, DNIS 1900…): switched off and on again through the overlay.
    await everyNode('19001234567', 'dnis_blocked 403');
    await admin(world, 'POST', '/api/block-rules/1/toggle');
    await everyNode('19001234567', 'allowed');
    await admin(world, 'POST', '/api/block-rules/1/toggle');
    await everyNode('19001234567', 'dnis_blocked 403');

    // A global rule, then a deeper one for trunk 10 with its own code: the deeper decides where both match.
    const wide = await admin(world, 'POST', '/api/block-rules', {
      scope: 'global',
      block_type: 'dnis',
      pattern: '6140077',
      match_type: 'prefix',
    });
    await everyNode('61400771234', 'dnis_blocked 403');
    const deep = await admin(world, 'POST', '/api/block-rules', {
      scope: 'customer_trunk',
      scope_id: 10,
      block_type: 'dnis',
      pattern: '61400778',
      match_type: 'prefix',
      sip_response_code: 603,
    });
    await everyNode('61400778123', 'dnis_blocked 603');
    assert.deepEqual(await refusal('61400771234'), ['dnis_blocked 403', 'dnis_blocked 403']);

    // The wide rule's pattern edited: its old numbers go free, its new ones are refused.
    await admin(world, 'PUT', `/api/block-rules/${wide.id}`, { pattern: '6140066' });
    await everyNode('61400771234', 'allowed');
    await everyNode('61400661234', 'dnis_blocked 403');
    assert.deepEqual(await refusal('61400778123'), ['dnis_blocked 603', 'dnis_blocked 603']);

    await admin(world, 'DELETE', `/api/block-rules/${wide.id}`);
    await admin(world, 'DELETE', `/api/block-rules/${deep.id}`);
    await everyNode('61400661234', 'allowed');
    await everyNode('61400778123', 'allowed');
    await allCaughtUp(world);
  });

  it('a carrier block rule takes the carrier out of routing, past a warm route cache, and back', async () => {
    // Carrier 21 is first for trunk 10's mobile calls; asked twice, the route cache holds it.
    for (const node of world.sidecars) {
      assert.equal(await routedCarrier(node), 21);
      assert.equal(await routedCarrier(node), 21);
    }
    const rule = await admin(world, 'POST', '/api/block-rules', {
      scope: 'carrier_trunk',
      scope_id: 21,
      block_type: 'dnis',
      pattern: '6140012',
      match_type: 'prefix',
    });
    await onEvery(world.sidecars, async (node) => assert.notEqual(await routedCarrier(node), 21));
    await admin(world, 'DELETE', `/api/block-rules/${rule.id}`);
    await onEvery(world.sidecars, async (node) => assert.equal(await routedCarrier(node), 21));
  });

  it('trunk IP auth added, moved and deleted, and a suspended trunk`s networks, take effect at once', async () => {
    const trunkOf = async (sourceIp: string): Promise<string[]> => {
      const answers = await Promise.all(world.sidecars.map((node) => auth(node, sourceIp)));
      return answers.map((answer) => (answer.allowed === true ? String(answer.customer_trunk_id) : String(answer.reason_code)));
    };
    const everyNodeSees = (sourceIp: string, expected: string): Promise<void> =>
      onEvery(world.sidecars, async () => assert.deepEqual(await trunkOf(sourceIp), [expected, expected], sourceIp));

    const cidr = await admin(world, 'POST', '/api/trunk-ip-auth', { trunk_type: 'customer', trunk_id: 10, cidr: '100.64.9.0/24' });
    await everyNodeSees('100.64.9.9', '10');
    await admin(world, 'PUT', `/api/trunk-ip-auth/${cidr.id}`, { cidr: '100.64.10.0/24' });
    await everyNodeSees('100.64.10.9', '10');
    await everyNodeSees('100.64.9.9', 'source_ip_not_authorised');

    // Suspending trunk 10 takes every network of it away (the snapshot's and the live one), reactivating gives them back.
    await admin(world, 'PUT', '/api/customer-trunks/10', { status: 'suspended' });
    await everyNodeSees(TRUNK_10_SOURCE, 'source_ip_not_authorised');
    await everyNodeSees('100.64.10.9', 'source_ip_not_authorised');
    await admin(world, 'PUT', '/api/customer-trunks/10', { status: 'active' });
    await everyNodeSees(TRUNK_10_SOURCE, '10');
    await everyNodeSees('100.64.10.9', '10');

    await admin(world, 'DELETE', `/api/trunk-ip-auth/${cidr.id}`);
    await everyNodeSees('100.64.10.9', 'source_ip_not_authorised');
    await everyNodeSees(TRUNK_10_SOURCE, '10');
    await allCaughtUp(world);
  });
});
