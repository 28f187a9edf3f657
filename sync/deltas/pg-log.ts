import type pg from 'pg';
import type { PgChangeLog } from '../store/pg-config-store.js';
import { DEFAULT_DELTA_RETENTION, deltaLogRow, isLiveStoreTable, type DeltaRetention } from './log.js';

/**
 * The delta log's write side on PostgreSQL (issue 18 on issue 21's store): each live change's delta goes into
 * `delta_log` in the change's own transaction, as DeltaLog does on SQLite. The sequence is the one counter
 * row, moved by an UPDATE whose row lock is held until commit: concurrent writers of live tables, on one
 * control plane or two, take their numbers one after another in commit order, and a rolled-back change gives
 * its number back, so the log stays gap-free. Reading the log for nodes stays with DeltaLog until serving on
 * PostgreSQL is ported.
 */
export class PgDeltaLog implements PgChangeLog {
  constructor(readonly retention: DeltaRetention = DEFAULT_DELTA_RETENTION) {}

  isLive(storeTable: string): boolean {
    return isLiveStoreTable(storeTable);
  }

  async append(client: pg.PoolClient, storeTable: string, id: number, row: Record<string, unknown> | null): Promise<number> {
    const { table, op, body } = deltaLogRow(storeTable, row);
    const seq = (
      await client.query<{ last_seq: number }>('UPDATE delta_sequence SET last_seq = last_seq + 1 WHERE id = 1 RETURNING last_seq')
    ).rows[0].last_seq;
    await client.query('INSERT INTO delta_log (seq, committed_at, table_name, op, row_id, row) VALUES ($1, $2, $3, $4, $5, $6)', [
      seq,
      new Date().toISOString(),
      table,
      op,
      id,
      body,
    ]);
    if (seq > this.retention.count) await client.query('DELETE FROM delta_log WHERE seq <= $1', [seq - this.retention.count]);
    return seq;
  }
}
