import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseInstant } from '../../src/core/time/parse-instant.js';
import { isoInstant } from '../../src/core/time/iso-instant.js';

/**
 * What the CDR endpoint read before parseInstant, the reference it must equal for every text: the regex and
 * Date.parse, but only where the date and time of day written exist. Date.parse rolls an impossible date into
 * another (2026-02-30 is March 2); the reference checks that by writing the instant back with Date's UTC
 * fields, so it shares no code with parseInstant's own check.
 */
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;
function exists(text: string): boolean {
  const [year, month, day, hour, minute, second] = [0, 5, 8, 11, 14, 17].map((at, i) => Number(text.slice(at, at + (i === 0 ? 4 : 2))));
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second);
  return (
    date.getUTCFullYear() === year &&
    date.getUTCMonth() === month - 1 &&
    date.getUTCDate() === day &&
    date.getUTCHours() === hour &&
    date.getUTCMinutes() === minute &&
    date.getUTCSeconds() === second
  );
}
const reference = (text: string): number => (RFC3339.test(text) && exists(text) ? Date.parse(text) : Number.NaN);

/** A seeded generator, so that a failure names a text that fails again. */
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

const pad = (value: number, width: number): string => String(value).padStart(width, '0');

function same(text: string): void {
  assert.ok(Object.is(parseInstant(text), reference(text)), `${JSON.stringify(text)}: ${parseInstant(text)} against ${reference(text)}`);
}

describe('parseInstant reads an RFC 3339 timestamp as the regex and Date.parse did, refusing dates and times that do not exist', () => {
  it('over random instants written by toISOString and with offsets', () => {
    const random = lcg(6);
    for (let i = 0; i < 100_000; i++) {
      const ms = Math.round(random() * 253_402_300_799_999) - (i % 3 === 0 ? 62_167_219_200_000 : 0); // years 0000–9999
      const text = isoInstant(Math.max(-62_167_219_200_000, ms));
      same(text);
      const offset = `${random() < 0.5 ? '+' : '-'}${pad(Math.floor(random() * 24), 2)}:${pad(Math.floor(random() * 60), 2)}`;
      same(text.slice(0, -1) + offset);
      same(text.slice(0, 19) + offset);
      same(text.slice(0, 19) + 'Z');
    }
  });

  it('over random fields in and out of range, every fraction length, zone and separator', () => {
    const random = lcg(16);
    const pick = <T>(choices: readonly T[]): T => choices[Math.floor(random() * choices.length)];
    for (let i = 0; i < 100_000; i++) {
      const year = pick([0, 1, 99, 100, 1582, 1900, 1970, 2000, 2024, 2026, 2100, 2400, 9999, Math.floor(random() * 10_000)]);
      const fraction = pick(['', '.', '.0', '.5', '.12', '.123', '.999', '.1234', '.123456789', '.1234567890', '.12a']);
      const zone = pick([
        'Z',
        'z',
        '',
        '+00:00',
        '-00:00',
        '+05:30',
        '-11:59',
        '+23:59',
        '+24:00',
        '-12:60',
        '+1000',
        '+10:0',
        'ZZ',
        'UTC',
      ]);
      const text =
        `${pad(year, 4)}-${pad(Math.floor(random() * 14), 2)}-${pad(Math.floor(random() * 33), 2)}${pick(['T', 't', ' ', '_'])}` +
        `${pad(Math.floor(random() * 26), 2)}:${pad(Math.floor(random() * 61), 2)}:${pad(Math.floor(random() * 62), 2)}${fraction}${zone}`;
      same(text);
    }
  });

  it('at the edges: leap days, month ends, the first and last instants, hour 24 and second 60, malformed text', () => {
    const texts = [
      '2024-02-29T12:00:00Z',
      '2023-02-29T12:00:00Z',
      '2000-02-29T00:00:00Z',
      '1900-02-29T00:00:00Z',
      '2100-02-29T00:00:00Z',
      '2400-02-29T23:59:59.999Z',
      '2026-04-31T00:00:00Z',
      '2026-04-30T00:00:00Z',
      '2026-12-31T23:59:59.999Z',
      '2027-01-01T00:00:00.000Z',
      '1970-01-01T00:00:00Z',
      '1969-12-31T23:59:59.999Z',
      '0000-01-01T00:00:00Z',
      '0000-03-01T00:00:00+23:59',
      '0001-01-01T00:00:00Z',
      '0099-12-31T23:59:59Z',
      '9999-12-31T23:59:59.999Z',
      '9999-12-31T23:59:59.999-23:59',
      '2026-01-15T24:00:00Z',
      '2026-01-15T23:59:60Z',
      '2026-01-15T23:60:00Z',
      '2026-00-15T08:30:00Z',
      '2026-13-15T08:30:00Z',
      '2026-01-00T08:30:00Z',
      '2026-01-15T08:30:00',
      '2026-01-15 08:30:00Z',
      '2026-01-15t08:30:00z',
      '2026-01-15T08:30:00.Z',
      '2026-01-15T08:30:00.1234Z',
      '2026-01-15T08:30:00+10:00',
      '2026-01-15T08:30:00+1000',
      '+02026-01-15T08:30:00Z',
      '2026-1-15T08:30:00Z',
      '2026-01-15T8:30:00Z',
      '２０２６-01-15T08:30:00Z',
      '2026-01-15T08:30:00Z ',
      ' 2026-01-15T08:30:00Z',
      '2026-01-15T08:30:00ZZ',
      '2026-01-15T08:30:00.12-05:00',
      '',
      'now',
      '2026-01-15',
    ];
    for (const text of texts) same(text);
    assert.equal(parseInstant('2026-01-15T08:30:00Z'), Date.UTC(2026, 0, 15, 8, 30), 'the reference agrees with plain arithmetic');
    // Date.parse reads these as other instants (March 2, the next day's midnight); they are refused in every shape.
    for (const text of [
      '2026-02-30T10:00:00Z',
      '2026-02-30t10:00:00z',
      '2026-02-30 10:00:00.1234Z',
      '2026-01-15T24:00:00Z',
      '2026-04-31T00:00:00+01:00',
    ])
      assert.ok(Number.isNaN(parseInstant(text)), text);
    assert.equal(parseInstant('2026-01-15T18:30:00.250+10:00'), Date.UTC(2026, 0, 15, 8, 30, 0, 250));
  });
});
