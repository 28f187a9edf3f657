import type Database from 'better-sqlite3';
import type { RateColumns } from '../../src/core/snapshot/schema.js';

/**
 * Reads every rate row into the snapshot's columns. Millions of rows cost
 * seconds when each crosses from SQLite into JS as a row (2M rows: ~2 s of
 * the 3 s the read took, before any work on them). Here SQLite concatenates
 * each column of a chunk of rows into one string, and JS cuts the strings
 * up: 2M rows in about a third of the time. Chunks keep every string far
 * below V8's string limit whatever the size of the store.
 *
 * Each chunk checks that its strings cut into exactly its row count; a store
 * holding text the cut cannot handle (a separator inside a destination name,
 * say) is read row by row instead, with the same result.
 *
 * Call inside a read transaction: the chunks must see one state of the table.
 */
export const CHUNK_ROWS = 100_000;
/** Separates variable-length text (destination names, dates); lengths are carried as one character each for the digit columns. */
const SEPARATOR = '\u0001';
/** char(LENGTH_BASE + n) carries a length n < 65,000 as one UTF-16 unit. */
export const LENGTH_BASE = 48;
const COMMA = 44;
const SLASH = 47;

const CHUNK_SQL = `
  SELECT count(*), max(id),
    group_concat(rate_deck_id, ','),
    group_concat(prefix, ''), group_concat(char(${LENGTH_BASE} + length(prefix)), ''),
    group_concat(rate_per_minute, ''), group_concat(char(${LENGTH_BASE} + length(rate_per_minute)), ''),
    group_concat(CASE rate_type WHEN 'per_call' THEN '1' ELSE '0' END, ''),
    group_concat(coalesce(billing_increment_initial, 0) || '/' || coalesce(billing_increment_step, 0), ','),
    group_concat(destination_name, char(1)),
    group_concat(effective_at, char(1))
  FROM (SELECT * FROM rate_deck_rates WHERE id > ? ORDER BY id LIMIT ?)`;

/** One chunk's aggregates, in CHUNK_SQL's order (PostgreSQL's read builds the same: pg-rate-columns.ts). */
export type ChunkRow = [number, number | null, string, string, string, string, string, string, string, string, string];

/** The columns being filled, chunk by chunk or row by row, whichever engine the rows come from. */
export class Columns {
  readonly columns: RateColumns;
  private readonly names = new Map<string, number>();
  private readonly effectiveTimes = new Map<string, number>();
  private readonly prefixes: string[] = [];
  private readonly rates: string[] = [];
  private prefixLength = 0;
  private rateLength = 0;
  row = 0;

  constructor(count: number) {
    this.columns = {
      rate_deck_id: new Uint32Array(count),
      prefix_digits: '',
      prefix_end: new Uint32Array(count),
      destination_name: new Uint32Array(count),
      destination_names: [],
      rate_text: '',
      rate_end: new Uint32Array(count),
      rate_type: new Uint8Array(count),
      billing_increment_initial: new Uint16Array(count),
      billing_increment_step: new Uint16Array(count),
      effective_at: new Float64Array(count),
    };
  }

  nameIndex(name: string): number {
    let index = this.names.get(name);
    if (index === undefined) {
      index = this.columns.destination_names.length;
      this.names.set(name, index);
      this.columns.destination_names.push(name);
    }
    return index;
  }

  /** A deck's rows share a handful of effective dates: each is parsed once. */
  effectiveMs(text: string): number {
    let ms = this.effectiveTimes.get(text);
    if (ms === undefined) {
      ms = Date.parse(text);
      this.effectiveTimes.set(text, ms);
    }
    return ms;
  }

  addPrefixes(digits: string): void {
    this.prefixes.push(digits);
  }

  addRates(text: string): void {
    this.rates.push(text);
  }

  endPrefix(length: number): number {
    return (this.prefixLength += length);
  }

  endRate(length: number): number {
    return (this.rateLength += length);
  }

  finish(): RateColumns {
    this.columns.prefix_digits = this.prefixes.join('');
    this.columns.rate_text = this.rates.join('');
    return this.columns;
  }
}

/** Cuts `text` at `separator` into exactly `count` pieces, handing each to `each`; false if the count differs. */
function splitExactly(text: string, separator: string, count: number, each: (piece: string, index: number) => void): boolean {
  let start = 0;
  for (let index = 0; index < count - 1; index++) {
    const end = text.indexOf(separator, start);
    if (end < 0) return false;
    each(text.slice(start, end), index);
    start = end + 1;
  }
  if (text.includes(separator, start)) return false;
  each(text.slice(start), count - 1);
  return true;
}

/**
 * Non-negative integers in decimal, each ended by one of the `separators` (char codes) or the end of the
 * text, handed to `each` in order; false on any other character or unless there are exactly `count`.
 */
function parseIntegers(text: string, separators: readonly number[], count: number, each: (value: number, index: number) => void): boolean {
  let value = 0;
  let index = 0;
  let digits = 0;
  for (let i = 0; i <= text.length; i++) {
    const code = i === text.length ? -1 : text.charCodeAt(i);
    if (code >= 48 && code <= 57) {
      value = value * 10 + (code - 48);
      digits++;
    } else if (code === -1 || separators.includes(code)) {
      if (digits === 0 || index === count) return false;
      each(value, index++);
      value = 0;
      digits = 0;
    } else {
      return false;
    }
  }
  return index === count;
}

export function readChunk(into: Columns, chunk: ChunkRow): boolean {
  const [count, , decks, prefixes, prefixLengths, rates, rateLengths, types, increments, names, effectiveAts] = chunk;
  const { columns } = into;
  const base = into.row;
  if (prefixLengths.length !== count || rateLengths.length !== count || types.length !== count) return false;
  let prefixTotal = 0;
  let rateTotal = 0;
  for (let i = 0; i < count; i++) {
    prefixTotal += prefixLengths.charCodeAt(i) - LENGTH_BASE;
    rateTotal += rateLengths.charCodeAt(i) - LENGTH_BASE;
  }
  // length() counts characters and JS counts UTF-16 units: they agree unless the text is not what the admin API accepts.
  if (prefixTotal !== prefixes.length || rateTotal !== rates.length) return false;
  if (!parseIntegers(decks, [COMMA], count, (deck, i) => (columns.rate_deck_id[base + i] = deck))) return false;
  // "initial/step" pairs: even numbers are initial increments, odd ones steps.
  const incrementsOk = parseIntegers(increments, [SLASH, COMMA], 2 * count, (value, i) => {
    (i % 2 === 0 ? columns.billing_increment_initial : columns.billing_increment_step)[base + (i >> 1)] = value;
  });
  if (!incrementsOk) return false;
  if (!splitExactly(names, SEPARATOR, count, (name, i) => (columns.destination_name[base + i] = into.nameIndex(name)))) return false;
  if (!splitExactly(effectiveAts, SEPARATOR, count, (text, i) => (columns.effective_at[base + i] = into.effectiveMs(text)))) return false;
  for (let i = 0; i < count; i++) {
    columns.prefix_end[base + i] = into.endPrefix(prefixLengths.charCodeAt(i) - LENGTH_BASE);
    columns.rate_end[base + i] = into.endRate(rateLengths.charCodeAt(i) - LENGTH_BASE);
    columns.rate_type[base + i] = types.charCodeAt(i) - 48;
  }
  into.addPrefixes(prefixes);
  into.addRates(rates);
  into.row += count;
  return true;
}

export function readRateColumns(db: Database.Database, chunkRows = CHUNK_ROWS): RateColumns {
  return readRateColumnsChunked(db, chunkRows) ?? readRateColumnsByRow(db);
}

/** The chunked read alone: null when some chunk's text cannot be cut safely. */
export function readRateColumnsChunked(db: Database.Database, chunkRows = CHUNK_ROWS): RateColumns | null {
  const count = (db.prepare('SELECT COUNT(*) AS n FROM rate_deck_rates').get() as { n: number }).n;
  const columns = new Columns(count);
  const chunkStatement = db.prepare(CHUNK_SQL).raw(true);
  let afterId = Number.MIN_SAFE_INTEGER;
  while (columns.row < count) {
    const chunk = chunkStatement.get(afterId, Math.min(chunkRows, count - columns.row)) as ChunkRow;
    if (chunk[0] === 0 || !readChunk(columns, chunk)) return null;
    afterId = chunk[1]!;
  }
  return columns.finish();
}

/** The same columns, a row at a time: the fallback for text the chunked read cannot cut safely. */
export function readRateColumnsByRow(db: Database.Database): RateColumns {
  const count = (db.prepare('SELECT COUNT(*) AS n FROM rate_deck_rates').get() as { n: number }).n;
  const columns = new Columns(count);
  const rows = db
    .prepare(`SELECT ${BY_ROW_COLUMNS} FROM rate_deck_rates ORDER BY id`)
    .raw(true)
    .iterate() as IterableIterator<RateRowValues>;
  for (const row of rows) {
    if (columns.row === count) break;
    addRow(columns, row);
  }
  return columns.finish();
}

/** A rate row as BY_ROW_COLUMNS selects it. */
export type RateRowValues = [number, string, string, string, string, number | null, number | null, string];
export const BY_ROW_COLUMNS =
  'rate_deck_id, prefix, destination_name, rate_per_minute, rate_type, billing_increment_initial, billing_increment_step, effective_at';

export function addRow(columns: Columns, [deck, prefix, name, rate, type, initial, step, effectiveAt]: RateRowValues): void {
  const { columns: target } = columns;
  const i = columns.row;
  target.rate_deck_id[i] = deck;
  columns.addPrefixes(prefix);
  target.prefix_end[i] = columns.endPrefix(prefix.length);
  target.destination_name[i] = columns.nameIndex(name);
  columns.addRates(rate);
  target.rate_end[i] = columns.endRate(rate.length);
  target.rate_type[i] = type === 'per_call' ? 1 : 0;
  target.billing_increment_initial[i] = initial ?? 0;
  target.billing_increment_step[i] = step ?? 0;
  target.effective_at[i] = columns.effectiveMs(effectiveAt);
  columns.row++;
}
