import { createCidrIndexBuilder, type CidrIndex } from '../net/cidr-index.js';
import { changeCidrIndex, cidrOverlaySize, type CidrChange } from '../net/cidr-overlay.js';
import type { CompiledSnapshot, CustomerTrunk } from './model.js';
import type { SmallTables, SnapshotTables } from './schema.js';
import { findRow, rowChunksOf, rowsInGroup, type RowChunks } from './row-chunks.js';

/**
 * The IP auth index: which active customer trunk a source address belongs to (call/auth identifies the
 * caller by it on every INVITE), as a CIDR index whose values are dense customer trunk indexes.
 */
export function compileIpAuth(
  tables: Pick<SnapshotTables, 'trunk_ip_auth'> | Pick<SmallTables, 'trunk_ip_auth'>,
  customerTrunks: CustomerTrunk[],
  customerTrunkById: Map<number, number>,
): CidrIndex {
  const ipAuthBuilder = createCidrIndexBuilder();
  const add = (rows: readonly IpAuthRow[]): void => {
    for (const row of rows) {
      if (row.trunk_type !== 'customer') continue; // carrier CIDRs identify inbound carrier traffic, not callers we route for
      const trunk = customerTrunkById.get(row.trunk_id)!;
      if (customerTrunks[trunk].active) ipAuthBuilder.add(row.cidr, trunk);
    }
  };
  if (Array.isArray(tables.trunk_ip_auth)) add(tables.trunk_ip_auth);
  else for (const chunk of tables.trunk_ip_auth.chunks) add(chunk.rows);
  return ipAuthBuilder.build();
}

/**
 * The group of a trunk_ip_auth row among the node's chunked rows: its customer trunk's id (carrier rows: none),
 * so a trunk's CIDRs are found without a scan when the trunk is suspended or reactivated.
 */
export const customerTrunkOfRow = (row: IpAuthRow): number => (row.trunk_type === 'customer' ? row.trunk_id : -1);

/** The snapshot's trunk_ip_auth rows (in id order) as the node keeps them. */
export function ipAuthRowsOf(rows: readonly IpAuthRow[]): RowChunks<IpAuthRow> {
  return rowChunksOf(rows, customerTrunkOfRow);
}

/**
 * Past this many changed entries since the last full build, a live change builds the index afresh rather
 * than grow the overlay every later change copies (a snapshot folds it in anyway).
 */
export const IP_AUTH_OVERLAY_LIMIT = 4096;

/**
 * The IP auth index after a live change that kept every customer trunk's dense index: the previous index
 * with an overlay of the networks that came and went — the `touched` trunk_ip_auth rows, and every row of
 * a trunk that started or stopped being allowed to call (`flipped`, dense indexes) — instead of 100k
 * networks built again.
 */
export function reviseIpAuth(
  previous: CompiledSnapshot,
  previousTables: Pick<SmallTables, 'trunk_ip_auth'>,
  next: Pick<CompiledSnapshot, 'customerTrunks' | 'customerTrunkById'>,
  tables: Pick<SmallTables, 'trunk_ip_auth'>,
  touched: ReadonlySet<number> | undefined,
  flipped: readonly number[],
): CidrIndex {
  const rows = new Set(touched);
  for (const trunk of flipped) for (const row of rowsInGroup(tables.trunk_ip_auth, next.customerTrunks[trunk].id)) rows.add(row.id);
  const changes: CidrChange[] = [];
  for (const id of rows) {
    const before = entryOf(findRow(previousTables.trunk_ip_auth, id), previous);
    const after = entryOf(findRow(tables.trunk_ip_auth, id), next);
    if (before !== null && after !== null && before.cidr === after.cidr && before.value === after.value) continue;
    if (before !== null) changes.push({ ...before, count: -1 });
    if (after !== null) changes.push({ ...after, count: 1 });
  }
  if (changes.length === 0) return previous.ipAuth;
  const revised =
    cidrOverlaySize(previous.ipAuth) + changes.length > IP_AUTH_OVERLAY_LIMIT ? null : changeCidrIndex(previous.ipAuth, changes);
  return revised ?? compileIpAuth(tables, next.customerTrunks, next.customerTrunkById);
}

type IpAuthRow = SnapshotTables['trunk_ip_auth'][number];

/** What `row` puts in the index of `trunks`: its network and trunk, or nothing (a carrier's, a trunk that may not call). */
function entryOf(
  row: IpAuthRow | undefined,
  trunks: Pick<CompiledSnapshot, 'customerTrunks' | 'customerTrunkById'>,
): { cidr: string; value: number } | null {
  if (row === undefined || row.trunk_type !== 'customer') return null;
  const trunk = trunks.customerTrunkById.get(row.trunk_id);
  return trunk !== undefined && trunks.customerTrunks[trunk].active ? { cidr: row.cidr, value: trunk } : null;
}
