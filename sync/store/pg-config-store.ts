import type pg from 'pg';
import type { RateColumns } from '../../src/core/snapshot/schema.js';
import {
  HISTORY_ROW_COLUMNS,
  historyRowValues,
  type ConfigStore,
  type ConflictMode,
  type ImportCounts,
  type ImportedRate,
  type ListQuery,
  type Row,
} from './config-store.js';
import { identifier } from './database.js';
import { inPgTransaction } from './pg-database.js';
import { readPgRateColumns } from './pg-rate-columns.js';
import { importRatesByCopy } from './pg-rate-import.js';
import { OneAtATime } from './one-at-a-time.js';

type Queryable = pg.Pool | pg.PoolClient;

/**
 * The key class of ConfigStore.exclusively's advisory locks (the name and the schema make the second half):
 * ours, apart from the sync lock's, the migrations' and the partner writes'.
 */
const EXCLUSIVE_LOCK_CLASS = 0x5eed_0023;

/**
 * Where a write to a live table records its delta on PostgreSQL, inside the write's transaction (the one there
 * is: sync/deltas/pg-log.ts; declared here so the store does not depend on it, as ChangeLog for SQLite).
 */
export interface PgChangeLog {
  isLive(table: string): boolean;
  /** `row`: the row after the write, null when it deleted `id`. Returns the delta's sequence. */
  append(client: pg.ClientBase, table: string, id: number, row: Row | null): Promise<number>;
}

/**
 * The configuration store on PostgreSQL: the same semantics as SqliteConfigStore, method for method, each
 * method one transaction. Where SQLite serialises writers on its one connection, here concurrent writers
 * (two control planes, the admin API's parallel requests) are kept apart by row locks: a rate revised, a
 * trunk's deck assignment, each locks the row it changes first.
 */
export class PgConfigStore implements ConfigStore {
  /**
   * The rate columns last read, reused while no rate row changed (2M rows cost seconds to read), keyed by
   * the count migration 14's trigger moves with every statement that writes rate rows, on any server.
   */
  private rateCache: { columns: RateColumns; changes: number } | null = null;

  constructor(
    private readonly pool: pg.Pool,
    private readonly deltas: PgChangeLog | null = null,
  ) {}

  /** A process's runs wait for each other here first: one pooled connection at a time holds the lock. */
  private readonly oneAtATime = new OneAtATime();

  exclusively<T>(name: string, work: () => Promise<T>): Promise<T> {
    return this.oneAtATime.run(name, async () => {
      const client = await this.pool.connect();
      let broken = false;
      try {
        await client.query("SELECT pg_advisory_lock($1, hashtext(current_schema() || ' ' || $2::text))", [EXCLUSIVE_LOCK_CLASS, name]);
        try {
          return await work();
        } finally {
          await client
            .query("SELECT pg_advisory_unlock($1, hashtext(current_schema() || ' ' || $2::text))", [EXCLUSIVE_LOCK_CLASS, name])
            .catch(() => {
              broken = true;
            });
        }
      } finally {
        // A connection the unlock failed on is closed, not pooled: closing it is what frees the lock then.
        client.release(broken);
      }
    });
  }

  /** The write's delta, in its transaction, when the table is live (issue 18). */
  private async logged(client: pg.PoolClient, table: string, id: number, row: Row | null): Promise<void> {
    if (this.deltas?.isLive(table) === true) await this.deltas.append(client, table, id, row);
  }

  async list(table: string, query: ListQuery): Promise<{ rows: Row[]; total: number }> {
    const columns = Object.keys(query.where).map(identifier);
    const values = columns.map((column) => query.where[column]).filter((value) => value !== null);
    let next = 0;
    const where =
      columns.length === 0
        ? ''
        : ` WHERE ${columns.map((column) => (query.where[column] === null ? `${column} IS NULL` : `${column} = $${++next}`)).join(' AND ')}`;
    const from = `FROM ${identifier(table)}${where}`;
    const [orderColumn, direction] = (query.orderBy ?? 'id').split(' ');
    const order = `${identifier(orderColumn)}${direction === 'DESC' ? ' DESC' : ''}`;
    // Both reads in one snapshot, so the total agrees with the page.
    return inPgTransaction(
      this.pool,
      async (client) => {
        const total = (await client.query<{ total: number }>(`SELECT COUNT(*) AS total ${from}`, values)).rows[0].total;
        const rows = (
          await client.query<Row>(`SELECT * ${from} ORDER BY ${order} LIMIT $${next + 1} OFFSET $${next + 2}`, [
            ...values,
            query.limit,
            query.offset,
          ])
        ).rows;
        return { rows, total };
      },
      'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY',
    );
  }

  async get(table: string, id: number): Promise<Row | null> {
    return getRow(this.pool, table, id);
  }

  ratesWrittenElsewhere(): void {
    // The change count (migration 14) already tells this store when rates moved, whoever wrote them; dropping
    // the cache as asked costs at most one read the count would have made anyway, and lets a caller (the
    // pg-store bench) force a cold read, which keeping it made impossible: its 2nd and 3rd PostgreSQL reads
    // of 2M rows answered from the cache in 0.01 s while reported as cold.
    this.rateCache = null;
  }

  async insert(table: string, values: Row): Promise<Row> {
    const columns = Object.keys(values).map(identifier);
    return this.write(table, async (client) => {
      const sql =
        columns.length === 0
          ? `INSERT INTO ${identifier(table)} DEFAULT VALUES RETURNING *`
          : `INSERT INTO ${identifier(table)} (${columns.join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')}) RETURNING *`;
      const row = (
        await client.query<Row>(
          sql,
          columns.map((column) => values[column]),
        )
      ).rows[0];
      // An id given (the seed, a node's credential keyed by its node's id) does not move the identity
      // sequence: moved here, so that the next row numbered by the database does not collide with it.
      if (values.id !== undefined && values.id !== null)
        await client.query(`SELECT setval(pg_get_serial_sequence($1, 'id'), (SELECT MAX(id) FROM ${identifier(table)}))`, [table]);
      await this.logged(client, table, row.id as number, row);
      return row;
    });
  }

  async update(table: string, id: number, values: Row): Promise<Row | null> {
    const columns = Object.keys(values).map(identifier);
    if (columns.length === 0) return this.get(table, id);
    return this.write(table, async (client) => {
      const { rows } = await client.query<Row>(
        `UPDATE ${identifier(table)} SET ${columns.map((column, i) => `${column} = $${i + 1}`).join(', ')} WHERE id = $${columns.length + 1} RETURNING *`,
        [...columns.map((column) => values[column]), id],
      );
      const row = rows.at(0) ?? null;
      if (row !== null) await this.logged(client, table, id, row);
      return row;
    });
  }

  async remove(table: string, id: number): Promise<boolean> {
    return this.write(table, async (client) => {
      const removed = ((await client.query(`DELETE FROM ${identifier(table)} WHERE id = $1`, [id])).rowCount ?? 0) > 0;
      if (removed) await this.logged(client, table, id, null);
      return removed;
    });
  }

  /**
   * A transaction writing `table`. One writing rate rows takes the row of their change count first: the
   * trigger would take it at its first rate statement anyway, and a transaction holding it while waiting
   * for a rate row another holds (who then waits for the count) would deadlock. Rate writes are admin-paced:
   * one at a time costs nothing that matters.
   */
  private write<T>(table: string, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return inPgTransaction(this.pool, async (client) => {
      if (table === 'rate_deck_rates') await client.query('SELECT changes FROM rate_rows_changes WHERE id = 1 FOR UPDATE');
      return work(client);
    });
  }

  async reviseRate(id: number, changes: Row): Promise<Row | null> {
    return this.write('rate_deck_rates', async (client) => {
      // Locked: two revisions of one rate at once would each keep the same old terms as history.
      const old = (await client.query<Row>('SELECT * FROM rate_deck_rates WHERE id = $1 FOR UPDATE', [id])).rows.at(0);
      if (old === undefined) return null;
      // The rate keeps its id and takes the new terms first; the history row holds the old ones (as SqliteConfigStore).
      const columns = Object.keys(changes).map(identifier);
      const updated = (
        await client.query<Row>(
          `UPDATE rate_deck_rates SET ${columns.map((column, i) => `${column} = $${i + 1}`).join(', ')} WHERE id = $${columns.length + 1} RETURNING *`,
          [...columns.map((column) => changes[column]), id],
        )
      ).rows[0];
      await client.query(
        `INSERT INTO rate_deck_rates (${HISTORY_ROW_COLUMNS}) VALUES (${HISTORY_ROW_COLUMNS.split(',')
          .map((_, i) => `$${i + 1}`)
          .join(', ')})`,
        historyRowValues(old, changes, id),
      );
      return updated;
    });
  }

  async removeRate(id: number): Promise<boolean> {
    return this.write('rate_deck_rates', async (client) => {
      await client.query('DELETE FROM rate_deck_rates WHERE superseded_by = $1', [id]);
      return ((await client.query('DELETE FROM rate_deck_rates WHERE id = $1', [id])).rowCount ?? 0) > 0;
    });
  }

  async assignRateDeck(kind: 'customer' | 'carrier', trunkId: number, rateDeckId: number): Promise<Row> {
    const table = `${kind}_trunk_rate_decks`;
    const column = `${kind}_trunk_id`;
    const now = new Date().toISOString();
    return inPgTransaction(this.pool, async (client) => {
      // The trunk's row is the lock: two assignments at once would otherwise each supersede the old one
      // and both stay active (READ COMMITTED sees neither's insert).
      await client.query(`SELECT id FROM ${kind}_trunks WHERE id = $1 FOR UPDATE`, [trunkId]);
      await client.query(`UPDATE ${table} SET is_active = 0, superseded_at = $1 WHERE ${column} = $2 AND is_active = 1`, [now, trunkId]);
      return (
        await client.query<Row>(
          `INSERT INTO ${table} (${column}, rate_deck_id, is_active, assigned_at) VALUES ($1, $2, 1, $3) RETURNING *`,
          [trunkId, rateDeckId, now],
        )
      ).rows[0];
    });
  }

  async unassignRateDeck(kind: 'customer' | 'carrier', trunkId: number): Promise<boolean> {
    const { rowCount } = await this.pool.query(
      `UPDATE ${kind}_trunk_rate_decks SET is_active = 0, superseded_at = $1 WHERE ${kind}_trunk_id = $2 AND is_active = 1`,
      [new Date().toISOString(), trunkId],
    );
    return (rowCount ?? 0) > 0;
  }

  async readRoutingData(tables: readonly string[]): Promise<{ rows: Record<string, Row[]>; rates: RateColumns; deltaSeq: number }> {
    // One snapshot for every table, even while the admin API (or another control plane) writes.
    return inPgTransaction(
      this.pool,
      async (client) => {
        const rows: Record<string, Row[]> = {};
        for (const table of tables) rows[table] = (await client.query<Row>(`SELECT * FROM ${identifier(table)} ORDER BY id`)).rows;
        // Read in the same snapshot as the rows: the count moved exactly when the rows it counts did.
        const { changes } = (await client.query<{ changes: number }>('SELECT changes FROM rate_rows_changes WHERE id = 1')).rows[0];
        const rates = this.rateCache?.changes === changes ? this.rateCache.columns : await readPgRateColumns(client);
        this.rateCache = { columns: rates, changes };
        // The live changes' sequence, in the same snapshot: the deltas this snapshot includes are those up to it.
        const { last_seq: deltaSeq } = (await client.query<{ last_seq: number }>('SELECT last_seq FROM delta_sequence WHERE id = 1'))
          .rows[0];
        return { rows, rates, deltaSeq };
      },
      'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY',
    );
  }

  async importRates(rateDeckId: number, rows: readonly ImportedRate[], onConflict: ConflictMode): Promise<ImportCounts> {
    return this.write('rate_deck_rates', (client) => importRatesByCopy(client, rateDeckId, rows, onConflict));
  }

  async lastSnapshotVersion(): Promise<number> {
    return (
      (await this.pool.query<{ version: number | null }>('SELECT MAX(version) AS version FROM snapshot_versions')).rows[0].version ?? 0
    );
  }

  async nextSnapshotVersion(term: number | null): Promise<number | null> {
    // One statement: the row's lock orders centres that ask at once, and the later one counts from the
    // earlier one's version. The term is compared in the same statement, so a lead taken before it is seen.
    // The versions recorded count too: one recorded other than through here is never handed out again.
    const { rows } = await this.pool.query<{ version: number }>(
      `UPDATE snapshot_version_sequence
          SET last_version = GREATEST(
                last_version + 1,
                (SELECT COALESCE(MAX(version), 0) + 1 FROM snapshot_versions),
                floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint)
        WHERE id = 1 AND ($1::bigint IS NULL OR $1::bigint >= (SELECT COALESCE(MAX(id), 0) FROM sync_lead_terms))
        RETURNING last_version AS version`,
      [term],
    );
    return rows[0]?.version ?? null;
  }

  async recordSnapshot(
    version: number,
    createdAt: string,
    checksum: string,
    counts: Record<string, number>,
    deltaSeq?: number,
  ): Promise<void> {
    await this.pool.query('INSERT INTO snapshot_versions (version, created_at, checksum, counts, delta_seq) VALUES ($1, $2, $3, $4, $5)', [
      version,
      createdAt,
      checksum,
      JSON.stringify(counts),
      deltaSeq ?? null,
    ]);
  }
}

async function getRow(db: Queryable, table: string, id: number): Promise<Row | null> {
  return (await db.query<Row>(`SELECT * FROM ${identifier(table)} WHERE id = $1`, [id])).rows[0] ?? null;
}

/** A rate's terms, one array per column, in the order the rate-deck updates' unnest insert takes them. */
export function rateTermColumns(rows: readonly Omit<ImportedRate, 'effective_at'>[]): unknown[][] {
  return [
    rows.map((row) => row.prefix),
    rows.map((row) => row.destination_name),
    rows.map((row) => row.rate_per_minute),
    rows.map((row) => row.rate_type),
    rows.map((row) => row.billing_increment_initial),
    rows.map((row) => row.billing_increment_step),
  ];
}
