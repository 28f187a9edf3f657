import { descriptionToTables } from '../../src/core/snapshot/codec.js';
import type { RetailTables } from '../../src/core/snapshot/retail.js';
import type { SnapshotDescription, SnapshotTables } from '../../src/core/snapshot/schema.js';
import type { ConfigStore, Row } from '../store/config-store.js';
import { callTranslationRow, retailProductRow } from './retail-rows.js';

/**
 * Builds the sidecar's snapshot from the config store: one consistent read of
 * every table, mapped to the snapshot schema the sidecar validates
 * (src/core/snapshot/schema.ts), plus the warnings an operator should see before
 * traffic finds the gap.
 */

const STORE_TABLES = [
  'customer_accounts',
  'customer_trunks',
  'trunk_ip_auth',
  'trunk_sip_registrations',
  'block_rules',
  'rate_decks',
  'customer_trunk_rate_decks',
  'carrier_trunk_rate_decks',
  'rate_deck_carrier_allowlist',
  'carrier_trunks',
  'carrier_trunk_ips',
  'carrier_sip_failover_rules',
  'lcr_config',
  'exchange_rates',
  // The partner API's (issue 19): products with their access numbers, and setup_call's translations.
  'partner_tenants',
  'partner_products',
  'call_translations',
] as const;

const bool = (value: unknown): boolean => value === 1 || value === true;

/** The store's 0/1 columns the snapshot carries as booleans, per store table. */
const BOOLEAN_COLUMNS: Partial<Record<(typeof STORE_TABLES)[number], readonly string[]>> = {
  customer_accounts: ['auto_cutoff_enabled'],
  customer_trunks: ['sip_trusted', 'rtpengine_enabled', 'auto_cutoff_enabled'],
  block_rules: ['is_active'],
  customer_trunk_rate_decks: ['is_active'],
  carrier_trunk_rate_decks: ['is_active'],
  carrier_trunks: ['sip_trusted', 'rtpengine_enabled', 'auto_cutoff_enabled'],
  lcr_config: ['block_if_cost_exceeds_sell'],
};

/** A store row as the snapshot carries it (a delta's row is the same: sync/deltas/log.ts). */
export function snapshotRow(storeTable: string, row: Row): Row {
  const fields = BOOLEAN_COLUMNS[storeTable as (typeof STORE_TABLES)[number]] ?? [];
  const copy: Row = { ...row };
  for (const field of fields) copy[field] = bool(row[field]);
  return copy;
}

function withBooleans<T>(rows: Row[], storeTable: (typeof STORE_TABLES)[number]): T[] {
  return rows.map((row) => snapshotRow(storeTable, row) as T);
}

export interface BuiltSnapshot {
  tables: SnapshotTables;
  warnings: string[];
  counts: { gateways: number; carriers: number; customer_trunks: number; rate_rows: number };
}

export async function buildSnapshotTables(store: ConfigStore): Promise<BuiltSnapshot> {
  const { rows, rates, deltaSeq } = await store.readRoutingData(STORE_TABLES);
  const description: SnapshotDescription = {
    customer_accounts: withBooleans(rows.customer_accounts, 'customer_accounts'),
    customer_trunks: withBooleans(rows.customer_trunks, 'customer_trunks'),
    trunk_ip_auth: rows.trunk_ip_auth as never,
    sip_registrations: rows.trunk_sip_registrations as never,
    block_rules: withBooleans(rows.block_rules, 'block_rules'),
    rate_decks: rows.rate_decks as never,
    rate_deck_rates: [],
    customer_trunk_rate_decks: withBooleans(rows.customer_trunk_rate_decks, 'customer_trunk_rate_decks'),
    carrier_trunk_rate_decks: withBooleans(rows.carrier_trunk_rate_decks, 'carrier_trunk_rate_decks'),
    rate_deck_allowlist: rows.rate_deck_carrier_allowlist as never,
    carrier_trunks: withBooleans(rows.carrier_trunks, 'carrier_trunks'),
    carrier_gateways: rows.carrier_trunk_ips as never,
    failover_rules: rows.carrier_sip_failover_rules as never,
    lcr_config: withBooleans(rows.lcr_config, 'lcr_config'),
    exchange_rates: rows.exchange_rates as never,
  };
  return {
    // The deltas read in the same transaction: a node applies those after it, and none before.
    tables: { ...descriptionToTables(description), rate_deck_rates: rates, ...retailTables(rows, Date.now()), delta_seq: deltaSeq },
    warnings: routingWarnings(description),
    counts: { ...countsOf(description), rate_rows: rates.prefix_end.length },
  };
}

function countsOf(description: SnapshotDescription): BuiltSnapshot['counts'] {
  return {
    gateways: description.carrier_gateways.filter((gateway) => gateway.status === 'active').length,
    carriers: description.carrier_trunks.filter((carrier) => carrier.status === 'active').length,
    customer_trunks: description.customer_trunks.length,
    rate_rows: description.rate_deck_rates.length,
  };
}

/** What would leave calls without a route, in the operator's words. */
export function routingWarnings(description: SnapshotDescription): string[] {
  const warnings: string[] = [];
  const decks = new Map(description.rate_decks.map((deck) => [deck.id, deck]));
  const activeDeckOf = (
    assignments: { is_active: boolean; rate_deck_id: number }[],
    trunkId: number,
    column: 'customer_trunk_id' | 'carrier_trunk_id',
  ): number | null =>
    assignments.find((row) => row.is_active && (row as unknown as Record<string, number>)[column] === trunkId)?.rate_deck_id ?? null;
  const activeGateways = new Set(
    description.carrier_gateways.filter((gateway) => gateway.status === 'active').map((gateway) => gateway.carrier_trunk_id),
  );
  const usableCarriers = new Set<number>();
  for (const carrier of description.carrier_trunks) {
    if (carrier.status !== 'active') continue;
    if (!activeGateways.has(carrier.id)) warnings.push(`carrier trunk ${carrier.id} (${carrier.name}) has no active gateway`);
    const deck = activeDeckOf(description.carrier_trunk_rate_decks, carrier.id, 'carrier_trunk_id');
    if (deck === null) warnings.push(`carrier trunk ${carrier.id} (${carrier.name}) has no cost rate deck`);
    if (activeGateways.has(carrier.id) && deck !== null) usableCarriers.add(carrier.id);
  }
  const ipAuthTrunks = new Set(description.trunk_ip_auth.filter((row) => row.trunk_type === 'customer').map((row) => row.trunk_id));
  const registeredTrunks = new Set(
    description.sip_registrations.filter((row) => row.status === 'active').map((row) => row.customer_trunk_id),
  );
  let routableTrunks = 0;
  for (const trunk of description.customer_trunks) {
    if (trunk.status !== 'active') continue;
    if (!ipAuthTrunks.has(trunk.id) && !registeredTrunks.has(trunk.id))
      warnings.push(`customer trunk ${trunk.id} (${trunk.name}) has no way in: no IP auth and no SIP registration`);
    const deckId = activeDeckOf(description.customer_trunk_rate_decks, trunk.id, 'customer_trunk_id');
    if (deckId === null) {
      warnings.push(`customer trunk ${trunk.id} (${trunk.name}) has no rate deck assigned`);
      continue;
    }
    const deck = decks.get(deckId);
    if (deck !== undefined && deck.currency !== trunk.currency)
      warnings.push(`customer trunk ${trunk.id} bills in ${trunk.currency} but its rate deck ${deck.id} is in ${deck.currency}`);
    const allowed = description.rate_deck_allowlist.filter((row) => row.rate_deck_id === deckId);
    if (allowed.some((row) => usableCarriers.has(row.carrier_trunk_id))) routableTrunks++;
  }
  for (const deck of description.rate_decks) {
    if (deck.deck_type === 'customer' && !description.rate_deck_allowlist.some((row) => row.rate_deck_id === deck.id))
      warnings.push(`rate deck ${deck.id} (${deck.name}) has an empty carrier allowlist`);
  }
  if (routableTrunks === 0) {
    warnings.push(
      'no complete routes: no active customer trunk has a rate deck whose allowlist holds an active carrier with a cost deck and an active gateway',
    );
  }
  return warnings;
}

/**
 * The access numbers of active products of active tenants, and the translations still live at `now` (an
 * ended one, and every one of a deactivated account, has expired: delete_account ends them).
 */
function retailTables(rows: Record<string, Row[]>, now: number): Required<RetailTables> {
  const activeTenants = new Set(rows.partner_tenants.filter((tenant) => tenant.status === 'active').map((tenant) => tenant.id));
  const products = rows.partner_products
    .map((product) => retailProductRow(product, activeTenants.has(product.partner_tenant_id)))
    .filter((product) => product !== null);
  const live = new Set(products.map((product) => product.id));
  return {
    retail_products: products,
    call_translations: rows.call_translations
      .filter((row) => Date.parse(row.expires_at as string) > now && live.has(row.partner_product_id as number))
      .map(callTranslationRow),
  };
}
