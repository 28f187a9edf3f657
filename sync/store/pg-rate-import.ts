import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { RateConflictError, type ConflictMode, type ImportCounts, type ImportedRate } from './config-store.js';

/**
 * A rate sheet into a deck on PostgreSQL (issue 21: 150k rows). The rows reach the server by COPY into a
 * temporary table, then an UPDATE … FROM (on overwrite) and an INSERT … SELECT of the keys not stored move
 * them into rate_deck_rates. The INSERTs of arrays this replaces (unnest of one array parameter per column,
 * 20k rows a statement) cost the client the arrays' text and the server their parsing, and brought every
 * row back (RETURNING) to count which were new: 150k rows in 2.97 s where COPY of the same rows takes
 * 0.78 s. COPY cannot resolve conflicts itself, hence the temporary table when the deck has rows already;
 * what it holds is counted and checked on the server.
 *
 * Call inside the transaction that holds the rate rows' change count (PgConfigStore.write): everything
 * here is one unit, and a conflict in 'error' mode throws before any row reaches rate_deck_rates.
 */

/** How many rows each piece of COPY text carries: big enough that the stream's per-write cost is nothing. */
const COPY_PIECE_ROWS = 2_000;

/** COPY's text format: these four characters would end a field or a row, or start an escape, if sent as they are. */
const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };
const NEEDS_ESCAPE = /[\\\t\n\r]/;

/** A text value as one field of COPY's text format. */
export function copyText(value: string): string {
  return NEEDS_ESCAPE.test(value) ? value.replace(/[\\\t\n\r]/g, (character) => COPY_ESCAPES[character]) : value;
}

/** An integer column's field: \N is COPY's null. */
function copyInteger(value: number | null): string {
  return value === null ? '\\N' : String(value);
}

const keyOf = (row: Pick<ImportedRate, 'prefix' | 'effective_at'>): string => `${row.prefix}\u0000${row.effective_at}`;

/**
 * An import as the row-by-row one sees it: a key (prefix and effective_at) met again later in the same file
 * is a conflict with the row the file itself just wrote. `unique` holds each key's first row, `last` each
 * key's last row, `repeats` how many rows repeat an earlier key, `firstRepeat` the first of them.
 */
function planImport(rows: readonly ImportedRate[]): {
  unique: number[];
  last: Map<string, number>;
  repeats: number;
  firstRepeat: number | null;
} {
  const last = new Map<string, number>();
  const unique: number[] = [];
  let repeats = 0;
  let firstRepeat: number | null = null;
  rows.forEach((row, index) => {
    const key = keyOf(row);
    if (last.has(key)) {
      repeats++;
      firstRepeat ??= index;
    } else {
      unique.push(index);
    }
    last.set(key, index);
  });
  return { unique, last, repeats, firstRepeat };
}

/**
 * The COPY text of the rows to write, a piece at a time: each key once, in the file's order, with the terms
 * the import gives it, its fields between `before(index)` (the key's first row in the file) and `after`.
 */
function* copyPieces(
  rows: readonly ImportedRate[],
  unique: readonly number[],
  termsOf: (index: number) => ImportedRate,
  before: (index: number) => string,
  after: string,
): Generator<string> {
  for (let start = 0; start < unique.length; start += COPY_PIECE_ROWS) {
    let piece = '';
    for (const index of unique.slice(start, start + COPY_PIECE_ROWS)) {
      const { prefix, effective_at: effectiveAt } = rows[index];
      const terms = termsOf(index);
      piece += `${before(index)}${copyText(prefix)}\t${copyText(terms.destination_name)}\t${copyText(terms.rate_per_minute)}\t${copyText(terms.rate_type)}\t${copyInteger(terms.billing_increment_initial)}\t${copyInteger(terms.billing_increment_step)}\t${copyText(effectiveAt)}${after}\n`;
    }
    yield piece;
  }
}

const IMPORTED_COLUMNS =
  'rate_deck_id, prefix, destination_name, rate_per_minute, rate_type, billing_increment_initial, billing_increment_step, effective_at, created_at, updated_at';

export async function importRatesByCopy(
  client: pg.PoolClient,
  rateDeckId: number,
  rows: readonly ImportedRate[],
  onConflict: ConflictMode,
): Promise<ImportCounts> {
  const plan = planImport(rows);
  const now = new Date().toISOString();
  const overwrite = onConflict === 'overwrite';
  // A stored key keeps its row on skip and error; on overwrite it takes the file's last terms for that key,
  // as the row-by-row import would leave it (each row after the key's first write an update).
  const termsOf = overwrite ? (index: number) => rows[plan.last.get(keyOf(rows[index]))!] : (index: number) => rows[index];
  const counts = (stored: number): ImportCounts => ({
    imported: plan.unique.length - stored,
    updated: overwrite ? stored + plan.repeats : 0,
    skipped: onConflict === 'skip' ? stored + plan.repeats : 0,
  });

  // A deck with no rows yet (a new deck, the usual upload) can meet no stored key: the rows go straight into
  // rate_deck_rates, the file's repeats already resolved above. The temporary table's write, read and sort
  // were half of what the server spent on such an import.
  const empty = (await client.query('SELECT 1 FROM rate_deck_rates WHERE rate_deck_id = $1 LIMIT 1', [rateDeckId])).rowCount === 0;
  if (empty) {
    if (onConflict === 'error' && plan.firstRepeat !== null) throw conflictAt(rows, plan.firstRepeat);
    const pieces = copyPieces(rows, plan.unique, termsOf, () => `${rateDeckId}\t`, `\t${now}\t${now}`);
    await pipeline(Readable.from(pieces), client.query(copyFrom(`COPY rate_deck_rates (${IMPORTED_COLUMNS}) FROM STDIN`)));
    return counts(0);
  }

  await client.query(
    `CREATE TEMPORARY TABLE rate_import (ord BIGINT NOT NULL, prefix TEXT NOT NULL, destination_name TEXT NOT NULL,
       rate_per_minute TEXT NOT NULL, rate_type TEXT NOT NULL, initial BIGINT, step BIGINT, effective_at TEXT NOT NULL) ON COMMIT DROP`,
  );
  const pieces = copyPieces(rows, plan.unique, termsOf, (index) => `${index}\t`, '');
  await pipeline(Readable.from(pieces), client.query(copyFrom('COPY rate_import FROM STDIN')));
  if (onConflict === 'error') {
    // The first row, in the file's order, that meets a stored row or an earlier row of the file: refused
    // before anything is written.
    const { first } = (
      await client.query<{ first: number | null }>(
        `SELECT min(i.ord) AS first FROM rate_import i
           JOIN rate_deck_rates r ON r.rate_deck_id = $1 AND r.prefix = i.prefix AND r.effective_at = i.effective_at`,
        [rateDeckId],
      )
    ).rows[0];
    const conflict = Math.min(first ?? Infinity, plan.firstRepeat ?? Infinity);
    if (conflict !== Infinity) throw conflictAt(rows, conflict); // rolls back
  }
  // The sort by ord (ids in the file's order) and the join's hash in memory rather than in temporary files.
  await client.query("SET LOCAL work_mem = '64MB'");
  if (overwrite)
    // The stored keys take the file's terms by a join, not by INSERT … ON CONFLICT DO UPDATE: that tries an
    // insert per row, finds the key, then locks and updates the row (a WAL record more per row) and draws an
    // id it throws away. Updating first leaves the insert below only the new keys.
    await client.query(
      `UPDATE rate_deck_rates r SET destination_name = i.destination_name, rate_per_minute = i.rate_per_minute,
         rate_type = i.rate_type, billing_increment_initial = i.initial, billing_increment_step = i.step, updated_at = $2
         FROM rate_import i WHERE r.rate_deck_id = $1 AND r.prefix = i.prefix AND r.effective_at = i.effective_at`,
      [rateDeckId, now],
    );
  // The keys the deck does not hold, in the file's order (ids as the row-by-row import numbers them). Under
  // the change count's lock no other import can add a key between the check or the update and this insert;
  // in 'error' mode no key is stored (checked above), so there is nothing to leave out.
  const onlyNew =
    onConflict === 'error'
      ? ''
      : `WHERE NOT EXISTS (SELECT 1 FROM rate_deck_rates r WHERE r.rate_deck_id = $1 AND r.prefix = i.prefix AND r.effective_at = i.effective_at)`;
  const inserted = await client.query(
    `INSERT INTO rate_deck_rates (${IMPORTED_COLUMNS})
       SELECT $1, prefix, destination_name, rate_per_minute, rate_type, initial, step, effective_at, $2, $2 FROM rate_import i
       ${onlyNew} ORDER BY ord`,
    [rateDeckId, now],
  );
  return counts(plan.unique.length - (inserted.rowCount ?? 0));
}

function conflictAt(rows: readonly ImportedRate[], index: number): RateConflictError {
  return new RateConflictError(rows[index].prefix, rows[index].effective_at, index);
}
