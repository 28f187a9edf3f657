import { RequestError } from '../../src/core/http/errors.js';
import type { OffendingRow } from '../../src/core/snapshot/validate.js';
import type { ConfigStore } from '../store/config-store.js';

/**
 * A sync refused because the store holds a row the snapshot validation refuses (planted straight in
 * the database, or stored before the admin API checked that rule). Nothing is pushed, so every node
 * keeps serving its last snapshot; the answer names the record in the store's words (its table and
 * id) so that an operator can fix or delete it, rather than a 500 on every sync until someone does.
 */

/** Snapshot tables whose store table has another name (build.ts maps the other way). */
const STORE_TABLE: Record<string, string> = {
  sip_registrations: 'trunk_sip_registrations',
  rate_deck_allowlist: 'rate_deck_carrier_allowlist',
  carrier_gateways: 'carrier_trunk_ips',
  failover_rules: 'carrier_sip_failover_rules',
};

export async function unsyncable(store: ConfigStore, reason: string, row: OffendingRow | undefined): Promise<RequestError> {
  if (row === undefined) return new RequestError('store_unsyncable', `the store holds data the sidecar would refuse: ${reason}`);
  const table = STORE_TABLE[row.table] ?? row.table;
  let id = row.id;
  if (id === null && row.index !== null && table === 'rate_deck_rates') {
    // Rate rows travel as columns without ids, in the store's id order (rate-columns.ts): the index finds the row.
    const { rows } = await store.list(table, { where: {}, limit: 1, offset: row.index });
    id = (rows.at(0)?.id as number | undefined) ?? null;
  }
  const named = id === null ? table : `${table} ${id}`;
  return new RequestError(
    'store_unsyncable',
    `${named}${row.field === null ? '' : ` (${row.field})`} would be refused by the sidecar: ${reason}; fix or delete it, then sync again`,
    { table, id, field: row.field },
  );
}
