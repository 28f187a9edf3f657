import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parse } from 'csv-parse/sync';
import { eachCsvRecord, eachPlainCsvRecord } from '../../sync/admin/csv-records.js';

/** The plain reading's records (copies: the array is reused), or null where it leaves the file to csv-parse. */
const readPlainCsv = (text: string): string[][] | null => {
  const records: string[][] = [];
  return eachPlainCsvRecord(text, (record) => records.push([...record])) ? records : null;
};

/** What eachCsvRecord finally hands over, with how many times it started again. */
const readCsvRecords = (text: string): { records: string[][]; restarts: number } => {
  let records: string[][] = [];
  let restarts = 0;
  eachCsvRecord(
    text,
    (record) => records.push([...record]),
    () => {
      records = [];
      restarts++;
    },
  );
  return { records, restarts };
};

const csvParse = (text: string): string[][] | Error => {
  try {
    return parse(text, { bom: true, relax_column_count: true, skip_empty_lines: true, trim: true }) as string[][];
  } catch (error) {
    return error as Error;
  }
};

/** A small, repeatable generator: the same texts every run. */
function* texts(count: number, seed: number): Generator<string> {
  // Every character the two readers treat differently, and plain ones.
  const alphabet = ['a', 'b', '1', ' ', ' ', '\t', '\f', ',', ',', '"', '"', '\n', '\n', '\r', '\u00a0', '\ufeff', 'é', '😀'];
  let state = seed;
  const next = (n: number): number => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state % n;
  };
  for (let i = 0; i < count; i++) {
    let text = '';
    const length = next(24);
    for (let j = 0; j < length; j++) text += alphabet[next(alphabet.length)];
    yield text;
  }
}

test('the plain reading gives csv-parse’s records whenever it reads a file, and leaves every file csv-parse refuses', () => {
  let read = 0;
  for (const text of texts(60_000, 7)) {
    const plain = readPlainCsv(text);
    if (plain === null) continue;
    read++;
    assert.deepEqual(plain, csvParse(text), JSON.stringify(text));
  }
  // The comparison means something only if the plain reading takes a good share of the texts.
  assert.ok(read > 6_000, `only ${read} texts read plainly`);
});

test('a carrier’s sheet: quoted names with commas and doubled quotes, spaces trimmed, empty and blank lines skipped', () => {
  const text = '\ufeffprefix, destination_name ,rate\n\n441,"London, ""City""",0.01  \n   \n442,  Leeds,0.02\n443,,\n';
  const expected = [
    ['prefix', 'destination_name', 'rate'],
    ['441', 'London, "City"', '0.01'],
    ['442', 'Leeds', '0.02'],
    ['443', '', ''],
  ];
  assert.deepEqual(readPlainCsv(text), expected);
  assert.deepEqual(readCsvRecords(text), { records: expected, restarts: 0 });
});

test('a file the plain reading does not take is csv-parse’s, with its records and its errors', () => {
  assert.equal(readPlainCsv('a,b\r\n1,2\r\n'), null);
  assert.deepEqual(readCsvRecords('a,b\r\n1,2\r\n'), {
    records: [
      ['a', 'b'],
      ['1', '2'],
    ],
    restarts: 1,
  });
  // Records handed over before the plain reading stopped are handed over again, from the first.
  assert.deepEqual(readCsvRecords('a,b\n1,2\n3, "4"\n'), {
    records: [
      ['a', 'b'],
      ['1', '2'],
      ['3', '4'],
    ],
    restarts: 1,
  });
  assert.equal(readPlainCsv('a,"b\n1,2\n'), null);
  assert.throws(() => readCsvRecords('a,"b\n1,2\n'), /Quote Not Closed/);
  assert.throws(() => readCsvRecords('a,b"c\n'), /Invalid Opening Quote/);
});
