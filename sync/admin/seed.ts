import { rowPrefix, rowRate } from '../../src/core/snapshot/codec.js';
import type { SnapshotTables } from '../../src/core/snapshot/schema.js';
import { storeValues } from './fields.js';
import * as resources from './resources.js';
import type { ConfigStore, ImportedRate } from '../store/config-store.js';

/**
 * Loads a whole routing world (the snapshot tables a generator or a fixture
 * produces) into the config store, through the same field definitions the
 * admin API validates with, ids kept. For demos, benchmarks and tests.
 */
export async function seedStore(store: ConfigStore, tables: SnapshotTables): Promise<void> {
  const put = (
    resource: resources.Resource,
    rows: readonly object[],
    extra?: (row: Record<string, unknown>) => Record<string, unknown>,
  ): Promise<void> => seedRows(store, resource, rows, extra);
  const now = new Date().toISOString();
  await put(resources.CUSTOMER_ACCOUNTS, tables.customer_accounts);
  await put(resources.CUSTOMER_TRUNKS, tables.customer_trunks);
  await put(resources.CARRIER_TRUNKS, tables.carrier_trunks);
  await put(resources.CARRIER_TRUNK_IPS, tables.carrier_gateways, (row) => ({ carrier_trunk_id: row.carrier_trunk_id }));
  await put(resources.FAILOVER_RULES, tables.failover_rules, (row) => ({ carrier_trunk_id: row.carrier_trunk_id }));
  await put(resources.TRUNK_IP_AUTH, tables.trunk_ip_auth);
  await put(resources.SIP_REGISTRATIONS, tables.sip_registrations);
  await put(resources.BLOCK_RULES, tables.block_rules);
  await put(resources.RATE_DECKS, tables.rate_decks);
  await put(resources.LCR_CONFIG, tables.lcr_config);
  await put(resources.EXCHANGE_RATES, tables.exchange_rates);
  for (const row of tables.rate_deck_allowlist) await store.insert('rate_deck_carrier_allowlist', { ...row, created_at: now });
  for (const row of tables.customer_trunk_rate_decks)
    if (row.is_active) await store.assignRateDeck('customer', row.customer_trunk_id, row.rate_deck_id);
  for (const row of tables.carrier_trunk_rate_decks)
    if (row.is_active) await store.assignRateDeck('carrier', row.carrier_trunk_id, row.rate_deck_id);

  const columns = tables.rate_deck_rates;
  const byDeck = new Map<number, ImportedRate[]>();
  for (let i = 0; i < columns.prefix_end.length; i++) {
    const deck = columns.rate_deck_id[i];
    const rows = byDeck.get(deck) ?? [];
    rows.push({
      prefix: rowPrefix(columns, i),
      destination_name: columns.destination_names[columns.destination_name[i]],
      rate_per_minute: rowRate(columns, i),
      rate_type: columns.rate_type[i] === 1 ? 'per_call' : 'per_minute',
      billing_increment_initial: columns.billing_increment_initial[i] || null,
      billing_increment_step: columns.billing_increment_step[i] || null,
      effective_at: new Date(columns.effective_at[i]).toISOString(),
    });
    byDeck.set(deck, rows);
  }
  for (const [deck, rows] of byDeck) await store.importRates(deck, rows, 'error');
}

/** Rows of one resource, ids kept, validated by the admin API's field definitions. */
export async function seedRows(
  store: ConfigStore,
  resource: resources.Resource,
  rows: readonly object[],
  extra: (row: Record<string, unknown>) => Record<string, unknown> = () => ({}),
): Promise<void> {
  const now = new Date().toISOString();
  for (const row of rows as Record<string, unknown>[]) {
    // Generated and fixture worlds have no portal logins: each account gets a username from its id and no
    // password, so nobody logs in to a seeded account until the operator sets one.
    const given = resource.portalLogin === true && row.username === undefined ? { ...row, username: `account-${String(row.id)}` } : row;
    const values = storeValues(resource.fields, given, 'create');
    const timestamps = resource.createdOnly === true ? { created_at: now } : { created_at: now, updated_at: now };
    await store.insert(resource.table, { ...values, ...extra(row), id: row.id, ...timestamps });
  }
}
