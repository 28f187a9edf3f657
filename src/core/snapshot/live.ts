import { isLiveTable, type Delta, type LiveTable } from './delta.js';
import { recompileLive } from './compile.js';
import { applyRetailDeltas } from './retail-index.js';
import type { CompiledSnapshot } from './model.js';
import type { SmallTables, SnapshotTables } from './schema.js';
import { validateReferences, validateSnapshot } from './validate.js';
import { idPosition } from './rows.js';
import { allRows, withoutRow, withRow } from './row-chunks.js';
import { customerTrunkOfRow, ipAuthRowsOf } from './ip-auth.js';

/**
 * Applying live changes (deltas, src/core/protocol/deltas.ts) to what a node serves, without recompiling the
 * world: the changed tables are copied with the change (copy-on-write: the old arrays are left as they were),
 * checked as a snapshot's tables are, and only the indexes they feed are rebuilt (recompileLive). The result
 * is a new state; the caller swaps it in with one assignment, so a request sees the state before the batch
 * or after it, never a mix. Pure: no I/O, and the time (which translations have expired) is the caller's.
 *
 * The retail tables (retail_products, call_translations) are not kept as rows: their deltas go straight into
 * the compiled retail index, copy-on-write by bucket (retail-index.ts), since a node may hold hundreds of
 * thousands of translations and copying them all per setup_call costs milliseconds.
 */
export interface LiveState {
  compiled: CompiledSnapshot;
  /** Every table but the rates, as of `compiled.deltaSeq`: what the next delta applies to. */
  tables: SmallTables;
}

export type ApplyResult =
  | { ok: true; state: LiveState; applied: number }
  /** `gap`: the batch does not continue the state's sequence (the caller asks again from its own). */
  | { ok: false; code: 'gap' | 'invalid'; reason: string };

/**
 * Applies `deltas` in order. Deltas at or below the state's sequence are skipped (already applied: a replay
 * after a snapshot, a batch asked twice); the first one past it must be exactly the next, and each after
 * exactly one more, or nothing is applied. A batch whose result fails the snapshot checks (a row of a shape
 * the node refuses, a reference to something it does not hold) is refused whole.
 */
export function applyDeltas(state: LiveState, deltas: readonly Delta[], nowMs: number = Date.now()): ApplyResult {
  let seq = state.compiled.deltaSeq;
  const pending = deltas.filter((delta) => delta.seq > seq);
  if (pending.length === 0) return { ok: true, state, applied: 0 };
  const copies = new Map<LiveTable, { id: number }[]>();
  let ipAuthRows = state.tables.trunk_ip_auth;
  const upserted = new Map<LiveTable, Map<number, unknown>>();
  const touched = new Map<LiveTable, Set<number>>();
  const retail: Delta[] = [];
  let deletesReferenced = false;
  for (const delta of pending) {
    if (delta.seq !== seq + 1) return { ok: false, code: 'gap', reason: `delta ${delta.seq} does not follow ${seq}` };
    if (!isLiveTable(delta.table))
      return { ok: false, code: 'invalid', reason: `delta ${delta.seq}: ${String(delta.table)} is not a live table` };
    seq = delta.seq;
    if (RETAIL_TABLES.has(delta.table)) {
      retail.push(delta);
      continue;
    }
    if (delta.table === 'trunk_ip_auth') {
      // Chunked: one chunk is copied, not the 100k rows (row-chunks.ts).
      ipAuthRows =
        delta.op === 'delete'
          ? withoutRow(ipAuthRows, delta.id, customerTrunkOfRow)
          : withRow(ipAuthRows, delta.row as unknown as SnapshotTables['trunk_ip_auth'][number], customerTrunkOfRow);
    } else {
      let rows = copies.get(delta.table);
      if (rows === undefined) {
        rows = (state.tables[delta.table] as { id: number }[]).slice();
        copies.set(delta.table, rows);
      }
      applyRow(rows, delta);
    }
    const changed = upserted.get(delta.table) ?? new Map<number, unknown>();
    if (delta.op === 'upsert') changed.set(delta.id, delta.row);
    else changed.delete(delta.id);
    upserted.set(delta.table, changed);
    touched.set(delta.table, (touched.get(delta.table) ?? new Set<number>()).add(delta.id));
    // Accounts and trunks are what other rows name: deleting one is checked against every table.
    if (delta.op === 'delete' && NAMED_BY_OTHER_ROWS.has(delta.table)) deletesReferenced = true;
  }
  const tables: SmallTables = { ...state.tables, ...(Object.fromEntries(copies) as Partial<SmallTables>), trunk_ip_auth: ipAuthRows };
  const problem = changeProblem(tables, upserted, deletesReferenced);
  if (problem !== null) return { ok: false, code: 'invalid', reason: `deltas up to ${seq} refused: ${problem}` };
  const retailApplied =
    retail.length === 0
      ? null
      : applyRetailDeltas(state.compiled.retail, retail, nowMs, {
          rateTrie: state.compiled.rates.trie,
          deckById: state.compiled.deckById,
          decks: state.compiled.decks,
        });
  if (retailApplied?.ok === false) return { ok: false, code: 'invalid', reason: `deltas up to ${seq} refused: ${retailApplied.reason}` };
  const compiled = recompileLive(state.compiled, state.tables, tables, touched, seq);
  if (retailApplied !== null) {
    compiled.retail = retailApplied.index;
    compiled.counts.access_numbers = retailApplied.index.accessNumbers.size;
    compiled.counts.call_translations = retailApplied.index.translationCount;
  }
  return { ok: true, state: { compiled, tables }, applied: pending.length };
}

/** The live tables other rows name (trunk IP auth, registrations, block rules, gateways, failover, allowlists). */
const NAMED_BY_OTHER_ROWS: ReadonlySet<LiveTable> = new Set(['customer_accounts', 'customer_trunks', 'carrier_trunks']);

const RETAIL_TABLES: ReadonlySet<LiveTable> = new Set(['retail_products', 'call_translations']);

const NO_ROWS: Omit<SnapshotTables, 'rate_deck_rates'> = {
  customer_accounts: [],
  customer_trunks: [],
  trunk_ip_auth: [],
  sip_registrations: [],
  block_rules: [],
  rate_decks: [],
  customer_trunk_rate_decks: [],
  carrier_trunk_rate_decks: [],
  rate_deck_allowlist: [],
  carrier_trunks: [],
  carrier_gateways: [],
  failover_rules: [],
  lcr_config: [],
  exchange_rates: [],
};

/**
 * What a snapshot's validation would say of the changed rows, checked in time proportional to the change, not
 * to the tables (100k CIDRs must not be parsed again for one block rule): the rows the batch wrote, each on its
 * own (fields, values), then what they name, looked up in the tables after the change. A delete of an account or
 * a trunk, which other rows name, has every reference in the tables checked (not every row's fields again).
 */
function changeProblem(tables: SmallTables, upserted: Map<LiveTable, Map<number, unknown>>, deletesReferenced: boolean): string | null {
  const rows = { ...NO_ROWS } as unknown as Record<string, unknown[]>;
  for (const [table, changed] of upserted) rows[table] = [...changed.values()];
  // The rate rows are not looked at (rates: false): a placeholder stands in for them.
  const noRates = undefined as unknown as SnapshotTables['rate_deck_rates'];
  const own = validateSnapshot({ ...(rows as unknown as SnapshotTables), rate_deck_rates: noRates }, { rates: false, references: false });
  if (!own.ok) return own.reason;
  if (deletesReferenced) {
    // The other rows were checked each on its own when they came: only what they name can have gone.
    const whole = validateReferences({ ...tables, trunk_ip_auth: allRows(tables.trunk_ip_auth), rate_deck_rates: noRates });
    return whole.ok ? null : whole.reason;
  }
  const has = (list: readonly { id: number }[], id: number | null): boolean => id !== null && list.some((row) => row.id === id);
  for (const row of rows.customer_trunks as SmallTables['customer_trunks'])
    if (!has(tables.customer_accounts, row.customer_account_id))
      return `customer_trunks ${row.id}: customer_account_id ${row.customer_account_id} does not exist`;
  for (const row of rows.trunk_ip_auth as SnapshotTables['trunk_ip_auth'])
    if (!has(row.trunk_type === 'customer' ? tables.customer_trunks : tables.carrier_trunks, row.trunk_id))
      return `trunk_ip_auth ${row.id}: ${row.trunk_type} trunk ${row.trunk_id} does not exist`;
  for (const row of rows.block_rules as SmallTables['block_rules']) {
    if (row.scope === 'customer_trunk' && !has(tables.customer_trunks, row.scope_id))
      return `block_rules ${row.id}: customer trunk ${row.scope_id} does not exist`;
    if (row.scope === 'carrier_trunk' && !has(tables.carrier_trunks, row.scope_id))
      return `block_rules ${row.id}: carrier trunk ${row.scope_id} does not exist`;
  }
  for (const row of rows.sip_registrations as SmallTables['sip_registrations'])
    if (!has(tables.customer_trunks, row.customer_trunk_id))
      return `sip_registrations ${row.id}: customer trunk ${row.customer_trunk_id} does not exist`;
  for (const [table, list] of [
    ['carrier_gateways', rows.carrier_gateways as SmallTables['carrier_gateways']],
    ['failover_rules', rows.failover_rules as SmallTables['failover_rules']],
  ] as const)
    for (const row of list)
      if (!has(tables.carrier_trunks, row.carrier_trunk_id))
        return `${table} ${row.id}: carrier trunk ${row.carrier_trunk_id} does not exist`;
  for (const row of rows.lcr_config as SmallTables['lcr_config'])
    if (row.rate_deck_id !== null && !has(tables.rate_decks, row.rate_deck_id))
      return `lcr_config ${row.id}: rate deck ${row.rate_deck_id} does not exist`;
  for (const row of rows.rate_deck_allowlist as SmallTables['rate_deck_allowlist']) {
    if (!has(tables.rate_decks, row.rate_deck_id)) return `rate_deck_allowlist ${row.id}: rate deck ${row.rate_deck_id} does not exist`;
    if (!has(tables.carrier_trunks, row.carrier_trunk_id))
      return `rate_deck_allowlist ${row.id}: carrier trunk ${row.carrier_trunk_id} does not exist`;
  }
  return null;
}

/**
 * Upserts or deletes one row. A new row goes where its id sorts among rows in id order (the order a
 * snapshot's rows come in, so a compile from these tables agrees with one from the centre's next snapshot).
 */
function applyRow(rows: { id: number }[], delta: Delta): void {
  // Rows are in id order (snapshots are read ORDER BY id, and this keeps it): a binary search finds the row
  // or where it goes, where a scan of 100k CIDR rows cost the apply most of a millisecond.
  const at = idPosition(rows, delta.id);
  const found = at < rows.length && rows[at].id === delta.id;
  if (delta.op === 'delete') {
    if (found) rows.splice(at, 1);
    return;
  }
  const row = delta.row as unknown as { id: number };
  if (found) rows[at] = row;
  else rows.splice(at, 0, row);
}

/**
 * The tables a node keeps beside its compiled snapshot: the snapshot's, without the rate rows and the retail
 * rows (their deltas change the compiled index only: rows kept here would go stale).
 */
export function smallTablesOf(tables: SnapshotTables): SmallTables {
  const small: Partial<SnapshotTables> = { ...tables };
  delete small.rate_deck_rates;
  delete small.retail_products;
  delete small.call_translations;
  return { ...(small as Omit<SnapshotTables, 'rate_deck_rates'>), trunk_ip_auth: ipAuthRowsOf(tables.trunk_ip_auth) };
}
