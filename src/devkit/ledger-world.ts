import { createHash } from 'node:crypto';
import { secretDigest } from '../core/protocol/node-credential.js';
import type { NodeSyncReply, NodeSyncRequest, SettlementCdr } from '../core/protocol/node-sync.js';
import { CUSTOMER_ACCOUNTS } from '../../sync/admin/resources.js';
import { seedRows } from '../../sync/admin/seed.js';
import { nodeRound } from '../../sync/ledger/node-round.js';
import { runSql } from '../../sync/ledger/sql-steps.js';
import { parseStoreLocation } from '../../sync/store/store-location.js';
import { openConfigStore, type ConfigStoreHandle } from '../../sync/stores.js';

/**
 * A centre's ledger on either engine (`location`: a --store value) with prepaid AUD customer accounts and
 * active nodes that share one secret, and money rounds run as the node-sync route runs them (nodeRound):
 * what the ledger's engine tests and the money-round bench drive.
 */
export interface LedgerWorld {
  handle: ConfigStoreHandle;
  /**
   * One money round of `node`, numbered after its last (`resend`: the same number again), run as the node-sync
   * route runs it (`unlockBeforeFlush`) unless `unlockBeforeFlush` is false (the bench's comparison).
   */
  round(node: string, body: Omit<NodeSyncRequest, 'node' | 'seq'>, resend?: boolean, unlockBeforeFlush?: boolean): Promise<NodeSyncReply>;
  /** Sets a prepaid account's funds to `amount` (a top-up's transaction). */
  fund(account: number, amount: string): Promise<void>;
  close(): Promise<void>;
}

const SECRET = 'ledger-world-node-secret';

export async function openLedgerWorld(location: string, nodes: readonly string[], accounts: readonly number[]): Promise<LedgerWorld> {
  const handle = await openConfigStore(parseStoreLocation(location));
  const now = new Date().toISOString();
  await seedRows(
    handle.config,
    CUSTOMER_ACCOUNTS,
    accounts.map((id) => prepaidAccount(id, `Prepaid ${id}`)),
  );
  for (const hostname of nodes) {
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
  const seq = new Map<string, number>();
  return {
    handle,
    round: (node, body, resend = false, unlockBeforeFlush = true) => {
      const next = (seq.get(node) ?? 0) + (resend ? 0 : 1);
      seq.set(node, next);
      const request = { node, ...body, seq: next };
      const digest = createHash('sha256').update(JSON.stringify(request)).digest('hex');
      return handle.ledger.run((tx) => nodeRound(tx, request, digest, `Bearer ${SECRET}`), { unlockBeforeFlush });
    },
    fund: async (account, amount) => {
      await handle.ledger.changeBalance({ entityType: 'customer', entityId: account, currency: 'AUD' }, (current) => ({
        next: { balance: amount, reserved: current.reserved },
        transaction: { transaction_type: 'credit', amount, description: 'funding', cdr_id: null, call_id: null },
      }));
    },
    close: () => handle.close(),
  };
}

/** A prepaid AUD customer account as the admin API takes it, with no limit or cut-off of its own. */
export function prepaidAccount(id: number, name: string): Record<string, unknown> {
  return {
    id,
    name,
    status: 'active',
    currency: 'AUD',
    billing_mode: 'prepaid',
    credit_limit: null,
    warning_threshold: null,
    auto_cutoff_enabled: false,
    auto_cutoff_behaviour: 'block_new',
  };
}

/** A rated, answered one-minute call of `account`, charged `charge` (AUD). */
export function settledCall(callId: string, account: number, charge: string): SettlementCdr {
  const at = '2026-12-01T10:00:00.000Z';
  return {
    sip_call_id: callId,
    node_cdr_id: 1,
    customer_account_id: account,
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
