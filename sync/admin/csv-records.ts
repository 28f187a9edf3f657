import { parse } from 'csv-parse/sync';

/**
 * A CSV file's records, as csv-parse reads them with the rate sheets' options (a BOM dropped, any number of
 * fields a record, empty lines skipped, fields trimmed). csv-parse was three quarters of a 150k-row sheet's
 * parse (0.83 s of CPU of 1.08 s, bench/rate-import-phases.ts): it walks the text a byte at a time through
 * its state machine and builds each field in a buffer of its own. Most sheets are plain, and the reading
 * below slices their fields straight out of the text. Anything it is not sure to read exactly as csv-parse
 * would (a carriage return, a quote within a field or after spaces, something after a closing quote) leaves
 * the whole file to csv-parse: the records, and the errors, are csv-parse's in every case.
 *
 * The records are handed over one at a time in one reused array, not kept: a sheet's 150k arrays and 900k
 * strings, all alive until the last row was read, cost the garbage collector more than the reading itself.
 * `onRecord` copies what it keeps. Where csv-parse takes over after records were handed over, `onRestart`
 * says so and the records come again from the first; csv-parse's error, if the file has one, is thrown.
 */
export function eachCsvRecord(text: string, onRecord: (fields: readonly string[]) => void, onRestart: () => void): void {
  if (eachPlainCsvRecord(text, onRecord)) return;
  onRestart();
  const records = parse(text, { bom: true, relax_column_count: true, skip_empty_lines: true, trim: true }) as string[][];
  for (const record of records) onRecord(record);
}

const COMMA = 44;
const NEWLINE = 10;
const QUOTE = 34;
const CARRIAGE_RETURN = 13;

/** The characters csv-parse's trim drops before a field (its right trim is String.trimEnd). */
const leadingTrimmable = (code: number): boolean => code === 32 || code === 9 || code === 12;

/**
 * The records of a plain file to `onRecord`, and true; false where csv-parse must read the file (after
 * handing over the records before the point where it stopped). Exported for the test that holds it to csv-parse.
 */
export function eachPlainCsvRecord(text: string, onRecord: (fields: readonly string[]) => void): boolean {
  // csv-parse takes \r\n, \n or \r, whichever comes first, as the end of a record: \n alone here.
  if (text.includes('\r')) return false;
  const end = text.length;
  const record: string[] = [];
  let pos = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  while (pos <= end) {
    let start = pos;
    while (pos < end && leadingTrimmable(text.charCodeAt(pos))) pos++;
    // A line of nothing but spaces is an empty line, skipped; so is the end of the text after a record's end.
    if (record.length === 0 && (pos === end || text.charCodeAt(pos) === NEWLINE)) {
      pos++;
      continue;
    }
    let field: string;
    if (text.charCodeAt(pos) === QUOTE) {
      if (pos !== start) return false;
      start = pos + 1;
      field = '';
      for (;;) {
        const close = text.indexOf('"', start);
        if (close < 0) return false; // an unclosed quote: csv-parse's error
        if (text.charCodeAt(close + 1) === QUOTE) {
          field += text.slice(start, close + 1);
          start = close + 2;
          continue;
        }
        field += text.slice(start, close);
        pos = close + 1;
        break;
      }
      const next = text.charCodeAt(pos);
      if (pos < end && next !== COMMA && next !== NEWLINE) return false;
    } else {
      start = pos;
      let code = text.charCodeAt(pos);
      while (pos < end && code !== COMMA && code !== NEWLINE) {
        if (code === QUOTE || code === CARRIAGE_RETURN) return false;
        code = text.charCodeAt(++pos);
      }
      field = text.slice(start, pos).trimEnd();
    }
    record.push(field);
    if (pos >= end || text.charCodeAt(pos) === NEWLINE) {
      onRecord(record);
      record.length = 0;
      // Past the end: a file ending in a comma has its last (empty) field read above, and then stops.
      if (pos >= end) break;
    }
    pos++;
  }
  return true;
}
