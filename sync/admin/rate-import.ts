import busboy from 'busboy';
import { RequestError } from '../../src/core/http/errors.js';
import type { IncomingRequest } from '../../src/core/http/server.js';
import { RateConflictError, type ConflictMode, type ImportedRate } from '../store/config-store.js';
import { json } from '../../src/core/http/respond.js';
import type { Route } from '../../src/core/http/server.js';
import { adminRoute, mustExist, pathId, readBody, type AdminHandler } from '../http/handlers.js';
import type { AdminContext } from './crud.js';
import { eachCsvRecord } from './csv-records.js';
import { maxLengthOf, storeValue, storeValues } from './fields.js';
import { RATE_DECK_RATES, RATE_DECKS } from './resources.js';

/**
 * Rate sheets in bulk: a JSON array, or the CSV files carriers send. Every
 * row is validated before anything is written; one bad row refuses the whole
 * import (naming its line), so a deck is never half-imported.
 */
const CONFLICT_MODES: readonly ConflictMode[] = ['skip', 'overwrite', 'error'];
const MAX_ROWS = 500_000;
const DESTINATION_NAME_MAX = maxLengthOf(RATE_DECK_RATES.fields.destination_name);

function conflictMode(value: unknown): ConflictMode {
  if (value === undefined || value === null || value === '') return 'skip';
  if (!CONFLICT_MODES.includes(value as ConflictMode))
    throw new RequestError('invalid_field', `on_conflict must be one of ${CONFLICT_MODES.join(', ')}`);
  return value as ConflictMode;
}

async function importInto(context: AdminContext, deckId: number, rows: ImportedRate[], onConflict: ConflictMode) {
  try {
    const counts = await context.store.importRates(deckId, rows, onConflict);
    context.onChange?.('rate_deck_rates');
    return counts;
  } catch (error) {
    if (error instanceof RateConflictError)
      throw new RequestError('duplicate', `row ${error.index + 1}: ${error.message} (on_conflict=error: nothing imported)`);
    throw error;
  }
}

export function bulkImportHandler(context: AdminContext): AdminHandler {
  return async (request) => {
    const deckId = pathId(request, 'id');
    await mustExist(context.store, RATE_DECKS.table, deckId, RATE_DECKS.noun);
    const body = readBody(request);
    const onConflict = conflictMode(body.on_conflict);
    if (!Array.isArray(body.rates) || body.rates.length === 0) throw new RequestError('invalid_field', 'rates must be a non-empty array');
    if (body.rates.length > MAX_ROWS) throw new RequestError('invalid_field', `rates has more than ${MAX_ROWS} rows`);
    const rows = body.rates.map((rate: unknown, index: number): ImportedRate => {
      if (typeof rate !== 'object' || rate === null || Array.isArray(rate))
        throw new RequestError('invalid_field', `rates[${index}] must be an object`);
      try {
        return storeValues(RATE_DECK_RATES.fields, rate as Record<string, unknown>, 'create') as unknown as ImportedRate;
      } catch (error) {
        if (error instanceof RequestError) throw new RequestError(error.code, `rates[${index}]: ${error.message}`);
        throw error;
      }
    });
    const counts = await importInto(context, deckId, rows, onConflict);
    return json(200, { ...counts, count: counts.imported + counts.updated, message: 'rates imported' });
  };
}

/** Header aliases seen in carriers' sheets, matched case-insensitively after trimming. */
const HEADER_ALIASES: Record<string, readonly string[]> = {
  prefix: ['prefix', 'code', 'dial_code', 'dialcode', 'destination_code', 'dial_prefix'],
  destination_name: ['destination_name', 'destination', 'name', 'description', 'country'],
  rate: ['rate', 'rate_per_minute', 'price', 'cost', 'per_minute_rate'],
  billing_increment: ['billing_increment', 'increment', 'increments', 'billing', 'interval'],
  rate_type: ['rate_type', 'type', 'charge_type'],
  effective_at: ['effective_at', 'effective_date', 'effective', 'valid_from', 'date'],
};

function normaliseHeader(header: string): string {
  return header
    .trim()
    .toLowerCase()
    .replace(/[\s-]+/g, '_');
}

/** Parses "60/60", "6/6", "1/1", "30/6"; null when malformed. */
export function parseIncrement(text: string): [number, number] | null {
  const match = /^\s*(\d{1,5})\s*\/\s*(\d{1,5})\s*$/.exec(text);
  if (match === null) return null;
  const initial = Number(match[1]);
  const step = Number(match[2]);
  return initial >= 1 && step >= 1 && initial <= 32767 && step <= 32767 ? [initial, step] : null;
}

/** A date (2026-02-01) or date-time, read as UTC. */
function parseUtc(text: string): string | null {
  const trimmed = text.trim();
  const value = /^\d{4}-\d{2}-\d{2}$/.test(trimmed)
    ? `${trimmed}T00:00:00Z`
    : /[zZ]|[+-]\d{2}:?\d{2}$/.test(trimmed)
      ? trimmed
      : `${trimmed.replace(' ', 'T')}Z`;
  const time = Date.parse(value);
  return /^\d{4}-\d{2}-\d{2}/.test(trimmed) && !Number.isNaN(time) ? new Date(time).toISOString() : null;
}

export interface CsvImport {
  rows: ImportedRate[];
  errors: string[];
}

/** Turns a CSV rate sheet into rows; every problem is reported with its line (the header is line 1). */
export function parseRateCsv(text: string, defaultEffectiveAt: string, forceEffectiveAt = false): CsvImport {
  let sheet = new SheetReader(defaultEffectiveAt, forceEffectiveAt);
  try {
    eachCsvRecord(
      text,
      (record) => sheet.add(record),
      () => (sheet = new SheetReader(defaultEffectiveAt, forceEffectiveAt)),
    );
  } catch (error) {
    return { rows: [], errors: [`not a readable CSV file: ${(error as Error).message}`] };
  }
  return sheet.result();
}

/**
 * A sheet's records as they come (the header first): the rows, and each bad row's line. The whole file is
 * read even past the hundredth error, as only its end shows it readable and its rows counted.
 */
class SheetReader {
  private records = 0;
  private headers: string[] = [];
  private readonly column: Partial<Record<string, number>> = {};
  private missing: string[] = [];
  private readonly rows: ImportedRate[] = [];
  private readonly errors: string[] = [];
  // A sheet's rows share a handful of dates: each distinct text is read once (Date.parse and toISOString
  // per row were a sixth of a 150k-row sheet's parse).
  private readonly effectiveTimes = new Map<string, string | null>();

  constructor(
    private readonly defaultEffectiveAt: string,
    private readonly forceEffectiveAt: boolean,
  ) {}

  add(record: readonly string[]): void {
    this.records++;
    if (this.records === 1) this.readHeader(record);
    // Past the row limit nothing more is kept: the answer is that limit's error.
    else if (this.missing.length === 0 && this.errors.length < 100 && this.records - 1 <= MAX_ROWS) this.readRow(record, this.records);
  }

  result(): CsvImport {
    if (this.records === 0) return { rows: [], errors: ['the file is empty'] };
    if (this.missing.length > 0)
      return {
        rows: [],
        errors: [`line 1: missing required column(s) ${this.missing.join(', ')} (found: ${this.headers.join(', ')})`],
      };
    if (this.records - 1 > MAX_ROWS) return { rows: [], errors: [`more than ${MAX_ROWS} rows`] };
    if (this.rows.length === 0 && this.errors.length === 0) this.errors.push('the file has a header but no rows');
    return { rows: this.rows, errors: this.errors };
  }

  private readHeader(record: readonly string[]): void {
    this.headers = record.map(normaliseHeader);
    for (const [name, aliases] of Object.entries(HEADER_ALIASES)) {
      const index = this.headers.findIndex((header) => aliases.includes(header));
      if (index >= 0) this.column[name] = index;
    }
    this.missing = ['prefix', 'destination_name', 'rate'].filter((name) => this.column[name] === undefined);
  }

  private cell(record: readonly string[], name: string): string {
    const index = this.column[name];
    return index === undefined ? '' : (record.at(index) ?? '').trim();
  }

  private effectiveAtOf(text: string): string | null {
    let value = this.effectiveTimes.get(text);
    if (value === undefined) this.effectiveTimes.set(text, (value = parseUtc(text)));
    return value;
  }

  private readRow(record: readonly string[], line: number): void {
    const problems: string[] = [];
    const prefix = this.cell(record, 'prefix').replace(/^\+/, '');
    if (!/^[0-9]{1,32}$/.test(prefix)) problems.push(`invalid prefix ${JSON.stringify(prefix.slice(0, 40))}`);
    const name = this.cell(record, 'destination_name');
    if (name === '') problems.push('destination_name is empty');
    // As the admin API's fields (fields.ts): PostgreSQL's text cannot hold it.
    if (name.includes('\u0000')) problems.push('destination_name contains the NUL character');
    // As long as the JSON rows allow, not whatever length a spreadsheet cell holds.
    if (name.length > DESTINATION_NAME_MAX) problems.push(`destination_name is longer than ${DESTINATION_NAME_MAX} characters`);
    const rate = this.cell(record, 'rate');
    try {
      storeValue('rate', RATE_DECK_RATES.fields.rate_per_minute, rate);
    } catch {
      problems.push(`invalid rate ${JSON.stringify(rate.slice(0, 40))}`);
    }
    const incrementText = this.cell(record, 'billing_increment');
    const increment = incrementText === '' ? ([1, 1] as [number, number]) : parseIncrement(incrementText);
    if (increment === null) problems.push(`invalid billing_increment ${JSON.stringify(incrementText.slice(0, 20))} (expected like 60/60)`);
    const typeText = this.cell(record, 'rate_type')
      .toLowerCase()
      .replace(/[\s-]+/g, '_');
    const rateType = typeText === '' ? 'per_minute' : typeText;
    if (rateType !== 'per_minute' && rateType !== 'per_call') problems.push('invalid rate_type');
    const effectiveText = this.cell(record, 'effective_at');
    const effectiveAt = effectiveText === '' || this.forceEffectiveAt ? this.defaultEffectiveAt : this.effectiveAtOf(effectiveText);
    if (effectiveAt === null) problems.push(`invalid effective_at ${JSON.stringify(effectiveText.slice(0, 40))}`);
    if (problems.length > 0) {
      this.errors.push(`line ${line}: ${problems.join('; ')}`);
      return;
    }
    this.rows.push({
      prefix,
      destination_name: name,
      rate_per_minute: rate,
      rate_type: rateType as ImportedRate['rate_type'],
      billing_increment_initial: increment![0],
      billing_increment_step: increment![1],
      effective_at: effectiveAt!,
    });
  }
}

/** The multipart form: the file (field `file` or `csv`) and the upload-level fields. */
export function readMultipart(
  request: Pick<IncomingRequest, 'contentType' | 'body'>,
): Promise<{ file: Buffer | null; fields: Partial<Record<string, string>> }> {
  return new Promise((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({ headers: { 'content-type': request.contentType }, limits: { files: 1, fields: 10, fileSize: 256 * 1024 * 1024 } });
    } catch {
      reject(new RequestError('invalid_rate_sheet', 'expected multipart/form-data with a CSV file in field "file"'));
      return;
    }
    const fields: Partial<Record<string, string>> = {};
    let file: Buffer | null = null;
    parser.on('file', (name, stream) => {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        if (name === 'file' || name === 'csv') file = Buffer.concat(chunks);
      });
    });
    parser.on('field', (name, value) => (fields[name] = value));
    parser.on('error', () => reject(new RequestError('invalid_rate_sheet', 'malformed multipart body')));
    parser.on('close', () => resolve({ file, fields }));
    parser.end(request.body);
  });
}

export function csvImportHandler(context: AdminContext): AdminHandler {
  return async (request) => {
    const deckId = pathId(request, 'id');
    await mustExist(context.store, RATE_DECKS.table, deckId, RATE_DECKS.noun);
    const { file, fields } = await readMultipart(request);
    if (file === null) throw new RequestError('invalid_rate_sheet', 'no CSV file in the form (field "file" or "csv")');
    const onConflict = conflictMode(fields.on_conflict);
    let defaultEffectiveAt = new Date().toISOString();
    if (fields.effective_now !== 'true' && fields.effective_at !== undefined && fields.effective_at !== '') {
      const parsed = parseUtc(fields.effective_at);
      if (parsed === null) throw new RequestError('invalid_field', 'effective_at must be a date or RFC 3339 timestamp');
      defaultEffectiveAt = parsed;
    }
    const { rows, errors } = parseRateCsv(file.toString('utf8'), defaultEffectiveAt, fields.effective_now === 'true');
    if (errors.length > 0)
      return json(400, { message: 'CSV refused: nothing imported', count: 0, errors, reason_code: 'invalid_rate_sheet' });
    const counts = await importInto(context, deckId, rows, onConflict);
    return json(201, { message: 'rates imported', count: counts.imported + counts.updated, errors: null, ...counts });
  };
}

/** Whole rate sheets: a large body limit, as a 150k-row CSV is several MB. */
const RATE_SHEET_BYTES = 256 * 1024 * 1024;

export function rateImportRoutes(context: AdminContext): Route[] {
  return [
    adminRoute('POST', '/api/rate-decks/{id}/rates/bulk', RATE_SHEET_BYTES, bulkImportHandler(context)),
    adminRoute('POST', '/api/rate-decks/{id}/rates/csv', RATE_SHEET_BYTES, csvImportHandler(context)),
  ];
}
