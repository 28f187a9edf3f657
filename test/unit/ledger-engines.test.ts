import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Decimal } from '../../src/core/money/decimal.js';
import { secretDigest } from '../../src/core/protocol/node-credential.js';
import type { NodeSyncReply, NodeSyncRequest, SettlementCdr } from '../../src/core/protocol/node-sync.js';
import { CUSTOMER_ACCOUNTS } from '../../sync/admin/resources.js';
import { seedRows } from '../../sync/admin/seed.js';
import { nodeRound } from '../../sync/ledger/node-round.js';
import { runSql } from '../../sync/ledger/sql-steps.js';
import { parseStoreLocation } from '../../sync/store/store-location.js';
import { openConfigStore, type ConfigStoreHandle } from '../../sync/stores.js';
import { postgresUnreachable, scratchSchema, type ScratchSchema } from '../helpers/postgres.js';

/**
 * The ledger's guarantees, the same cases on both engines: SQLite (one write lock) and PostgreSQL (READ
 * COMMITTED with the round's row locks, sync/ledger/pg-store.ts). The PostgreSQL half is skipped only
 * when the server does not answer.
 */
const unreachable = await postgresUnreachable();
const NODES = ['node-a', 'node-b', 'node-c'];
const SECRET = 'ledger-engines-secret';
const AUTHORIZATION = `Bearer ${SECRET}`;
const PREPAID = 1;

function cdr(callId: string, charge: string): SettlementCdr {
  const at = '2026-12-01T10:00:00.000Z';
  return {
    sip_call_id: callId,
    node_cdr_id: 1,
    customer_account_id: PREPAID,
    customer_trunk_id: 1,
    carrier_trunk_id: 1,
    carrier_gateway_id: 1,
    ani: '61299990000',
    dnis: '61299991111',
    start_time: at,
    answer_time: at,
    end_time: at,
    duration_seconds: 60,
    sip_response_code: 200,
    billable_duration_customer: 60,
    billable_duration_vendor: 60,
    customer_rate_deck_id: null,
    carrier_rate_deck_id: null,
    customer_cost: charge,
    customer_currency: 'AUD',
    customer_decimal_precision: 4,
    customer_rounding_direction: 'up',
    vendor_cost: '0',
    vendor_currency: 'AUD',
    vendor_decimal_precision: 4,
    vendor_rounding_direction: 'up',
    account_charge: charge,
    account_currency: 'AUD',
    created_at: at,
  };
}

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`the ledger on ${engine}`, { skip: engine === 'postgres' ? (unreachable ?? false) : false }, () => {
    let handle: ConfigStoreHandle;
    let scratch: ScratchSchema | null = null;
    const seq = new Map<string, number>();

    /** One money round of `node`, numbered after its last, as the node-sync route runs it. */
    const round = (node: string, body: Omit<NodeSyncRequest, 'node'>, resend = false): Promise<NodeSyncReply> => {
      const next = (seq.get(node) ?? 0) + (resend ? 0 : 1);
      seq.set(node, next);
      const request = { node, ...body, seq: next };
      const digest = createHash('sha256').update(JSON.stringify(request)).digest('hex');
      return handle.ledger.run((tx) => nodeRound(tx, request, digest, AUTHORIZATION));
    };
    const balance = () => handle.ledger.getBalance('customer', PREPAID);
    const fund = (amount: string) =>
      handle.ledger.changeBalance({ entityType: 'customer', entityId: PREPAID, currency: 'AUD' }, (current) => ({
        next: { balance: amount, reserved: current.reserved },
        transaction: { transaction_type: 'credit', amount, description: 'funding', cdr_id: null, call_id: null },
      }));
    /** Every node's lease on the account handed back, so a case starts with the whole balance as headroom. */
    const giveAllBack = async () => {
      for (const node of NODES) {
        const held = (await handle.ledger.leasesOf('customer', PREPAID)).find((lease) => lease.node === node)?.amount ?? '0';
        await round(node, { settlements: [], leases: [{ entity_type: 'customer', entity_id: PREPAID, want: '0', give_back: held }] });
      }
    };

    before(async () => {
      scratch = engine === 'postgres' ? await scratchSchema('ledger_engines') : null;
      const location = scratch?.url ?? `sqlite:${join(mkdtempSync(join(tmpdir(), 'ledger-engines-')), 'config.db')}`;
      handle = await openConfigStore(parseStoreLocation(location));
      const now = new Date().toISOString();
      await seedRows(handle.config, CUSTOMER_ACCOUNTS, [
        {
          id: PREPAID,
          name: 'Prepaid',
          status: 'active',
          currency: 'AUD',
          billing_mode: 'prepaid',
          credit_limit: null,
          warning_threshold: null,
          auto_cutoff_enabled: false,
          auto_cutoff_behaviour: 'block_new',
        },
      ]);
      for (const hostname of NODES) {
        const node = await handle.config.insert('opensips_nodes', {
          hostname,
          mi_socket_address: 'http://127.0.0.1:9/mi',
          region: 'test',
          status: 'active',
          created_at: now,
          updated_at: now,
        });
        await handle.ledger.run(() =>
          runSql(
            'INSERT INTO node_credentials (id, secret_hash, push_token, issued_at) VALUES (?, ?, ?, ?)',
            node.id,
            secretDigest(SECRET),
            'push',
            now,
          ),
        );
      }
    });

    after(async () => {
      await handle.close();
      await scratch?.drop();
    });

    it('settles a round: the CDR debits the account, out of the node lease, and the ask is leased out of the headroom', async () => {
      await fund('10.00');
      const granted = await round('node-a', {
        settlements: [],
        leases: [{ entity_type: 'customer', entity_id: PREPAID, want: '4', give_back: '0' }],
      });
      assert.equal(granted.leases[0].granted, '4');
      const reply = await round('node-a', { settlements: [cdr('call-1', '1.5')], leases: [] });
      assert.deepEqual(reply.settled, ['call-1']);
      assert.equal(reply.leases[0].granted, '2.5');
      const after = await balance();
      assert.equal(after.balance, '8.50');
      assert.equal(after.reserved, '2.50');
      await giveAllBack();
    });

    it('bills a CDR once, whichever round and node brings it again', async () => {
      const before = await balance();
      await round('node-b', { settlements: [cdr('call-2', '1')], leases: [] });
      await round('node-b', { settlements: [cdr('call-2', '1')], leases: [] });
      await round('node-c', { settlements: [cdr('call-2', '1')], leases: [] });
      assert.equal((await balance()).balance, new Decimal(before.balance).minus(1).toFixed(2));
      const rows = await handle.ledger.searchCdrs({
        startFrom: null,
        startTo: null,
        customerTrunkId: null,
        carrierTrunkId: null,
        sipCallId: 'call-2',
        limit: 10,
        offset: 0,
      });
      assert.equal(rows.length, 1);
    });

    it('answers a resent round with its first answer and applies nothing again', async () => {
      const body = {
        settlements: [cdr('call-3', '0.5')],
        leases: [{ entity_type: 'customer' as const, entity_id: PREPAID, want: '1', give_back: '0' }],
      };
      const first = await round('node-c', body);
      const after = await balance();
      const { total } = await handle.ledger.listTransactions('customer', PREPAID, 1, 0);
      const again = await round('node-c', body, true);
      assert.deepEqual(again, first);
      assert.deepEqual(await balance(), after);
      assert.equal((await handle.ledger.listTransactions('customer', PREPAID, 1, 0)).total, total);
      await giveAllBack();
    });

    it('never leases the same headroom twice to rounds of different nodes at the same moment', async () => {
      for (let attempt = 0; attempt < 5; attempt++) {
        const funds = await balance();
        const headroom = new Decimal(funds.balance).minus(funds.reserved);
        const ask = { settlements: [], leases: [{ entity_type: 'customer' as const, entity_id: PREPAID, want: '100', give_back: '0' }] };
        const replies = await Promise.all([round('node-a', ask), round('node-b', ask)]);
        const granted = replies.map((reply) => reply.leases[0].granted);
        const total = granted.reduce((sum, amount) => sum.plus(amount), new Decimal(0));
        assert.ok(total.equals(headroom), `granted ${granted.join(' + ')} of ${headroom.toFixed()}`);
        const leases = await handle.ledger.leasesOf('customer', PREPAID);
        const held = leases.reduce((sum, lease) => sum.plus(lease.amount), new Decimal(0));
        assert.ok(held.equals((await balance()).reserved), 'reserved is the sum of the leases');
        assert.ok(held.equals(headroom), `leases ${held.toFixed()} of ${headroom.toFixed()}`);
        await giveAllBack();
      }
    });
  });
}
