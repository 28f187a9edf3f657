import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  allRows,
  CHUNK_ROWS,
  findRow,
  rowChunksOf,
  rowsInGroup,
  withoutRow,
  withRow,
  type RowChunks,
} from '../../src/core/snapshot/row-chunks.js';
import { mulberry32 } from '../helpers/fuzz-requests.js';

/** A trunk_ip_auth-like row: `group` -1 stands for a carrier's row (in no group). */
interface Row {
  id: number;
  group: number;
}
const groupOf = (row: Row): number => row.group;

/** What the chunks must agree with: a plain array in id order, rebuilt from scratch. */
function expectSame(table: RowChunks<Row>, model: Map<number, Row>, groups: number, label: string): void {
  const rows = [...model.values()].sort((a, b) => a.id - b.id);
  assert.deepEqual(allRows(table), rows, `${label}: rows in id order`);
  assert.equal(table.length, rows.length, `${label}: length`);
  for (const chunk of table.chunks) {
    assert.ok(chunk.rows.length > 0 && chunk.rows.length <= 2 * CHUNK_ROWS, `${label}: chunk size ${chunk.rows.length}`);
  }
  for (let group = 0; group < groups; group++)
    assert.deepEqual(
      rowsInGroup(table, group),
      rows.filter((row) => row.group === group),
      `${label}: group ${group}`,
    );
}

describe('row chunks', () => {
  it('agree with a plain array rebuilt from scratch after random upserts, moves between groups and deletes', () => {
    const random = mulberry32(1806);
    const groups = 12;
    const model = new Map<number, Row>();
    for (let id = 1; id <= 3000; id += 2) model.set(id, { id, group: id % 7 === 0 ? -1 : id % groups });
    let table = rowChunksOf(
      [...model.values()].sort((a, b) => a.id - b.id),
      groupOf,
    );
    expectSame(table, model, groups, 'built');
    for (let step = 0; step < 4000; step++) {
      const before = allRows(table);
      const previous = table;
      // Ids in a range wider than the rows', so writes land before the first chunk, between chunks and past the last.
      const id = Math.floor(random() * 4000);
      if (random() < 0.55) {
        const row = { id, group: random() < 0.1 ? -1 : Math.floor(random() * groups) };
        table = withRow(table, row, groupOf);
        model.set(id, row);
      } else {
        table = withoutRow(table, id, groupOf);
        model.delete(id);
      }
      assert.deepEqual(allRows(previous), before, `step ${step}: the table before the write is left as it was`);
      assert.equal(findRow(table, id), model.get(id), `step ${step}: findRow ${id}`);
      if (step % 200 === 0) expectSame(table, model, groups, `step ${step}`);
    }
    expectSame(table, model, groups, 'end');
  });

  it('splits a chunk that grows past twice its size, and drops one that empties', () => {
    let table = rowChunksOf<Row>([], groupOf);
    for (let id = 1; id <= 2 * CHUNK_ROWS + 1; id++) table = withRow(table, { id, group: 0 }, groupOf);
    assert.equal(table.chunks.length, 2);
    for (let id = 1; id <= CHUNK_ROWS; id++) table = withoutRow(table, id, groupOf);
    assert.equal(table.chunks.length, 1);
    assert.equal(rowsInGroup(table, 0).length, CHUNK_ROWS + 1);
  });

  it('copies one chunk per write, not the table', () => {
    const rows = Array.from({ length: 20 * CHUNK_ROWS }, (_, i) => ({ id: i + 1, group: i % 5 }));
    const table = rowChunksOf(rows, groupOf);
    const changed = withRow(table, { id: 7 * CHUNK_ROWS + 3, group: 4 }, groupOf);
    const shared = changed.chunks.filter((chunk, k) => chunk === table.chunks[k]).length;
    assert.equal(shared, table.chunks.length - 1);
  });
});
