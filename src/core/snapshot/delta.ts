/**
 * A live change to the snapshot's tables (issue 18): one row upserted or deleted, numbered by the centre's delta
 * log. How deltas travel is src/core/protocol/deltas.ts; how a node applies them, live.ts.
 */

/** The snapshot tables (schema.ts) whose changes travel as deltas (the "live" kinds); every other change still needs a sync. */
export const LIVE_TABLES = [
  'customer_accounts',
  'customer_trunks',
  'trunk_ip_auth',
  'block_rules',
  'exchange_rates',
  'rate_deck_allowlist',
  // Routing kinds: what a carrier is, where it sends calls, how it fails over, the margin rules, who registers.
  'sip_registrations',
  'carrier_trunks',
  'carrier_gateways',
  'failover_rules',
  'lcr_config',
  // The partner API's (issue 19): a product's access numbers, live while it and its tenant are active, and setup_call's translations.
  'retail_products',
  'call_translations',
] as const;

export type LiveTable = (typeof LIVE_TABLES)[number];

export interface Delta {
  seq: number;
  table: LiveTable;
  op: 'upsert' | 'delete';
  id: number;
  /** The row after the change (upsert); null for a delete. */
  row: Record<string, unknown> | null;
}

export function isLiveTable(name: string): name is LiveTable {
  return (LIVE_TABLES as readonly string[]).includes(name);
}
