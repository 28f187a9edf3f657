import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { forEachEngine, startCentre, type Centre } from '../helpers/engines.js';
import { parseIncrement, parseRateCsv } from '../../sync/admin/rate-import.js';
import type { SidecarProcess } from '../helpers/sidecar.js';

const DEFAULT_AT = '2026-01-01T00:00:00.000Z';

describe('CSV rate sheets', () => {
  it('reads the contract example with its increments, per-call row and dates', () => {
    const csv =
      'prefix,destination_name,rate,billing_increment,rate_type,effective_at\n614,Australia Mobile,0.0250,1/1,per_minute,2026-02-01\n611300,Australia 1300 Per Call,0.1200,,per_call,2026-02-01\n';
    const { rows, errors } = parseRateCsv(csv, DEFAULT_AT);
    assert.deepEqual(errors, []);
    assert.deepEqual(rows, [
      {
        prefix: '614',
        destination_name: 'Australia Mobile',
        rate_per_minute: '0.0250',
        rate_type: 'per_minute',
        billing_increment_initial: 1,
        billing_increment_step: 1,
        effective_at: '2026-02-01T00:00:00.000Z',
      },
      {
        prefix: '611300',
        destination_name: 'Australia 1300 Per Call',
        rate_per_minute: '0.1200',
        rate_type: 'per_call',
        billing_increment_initial: 1,
        billing_increment_step: 1,
        effective_at: '2026-02-01T00:00:00.000Z',
      },
    ]);
  });

  it("matches headers in any order and case, with carriers' aliases, and quoted names with commas", () => {
    const csv = '\uFEFFEffective Date;Ignored\n'.replace(';', ',') + 'x\n';
    assert.match(parseRateCsv(csv, DEFAULT_AT).errors[0], /missing required column\(s\) prefix, destination_name, rate/);
    const sheet =
      'Rate,Increment,Code,Destination,Notes\n0.0300,60/60,+44,"United Kingdom, Fixed",x\n0.5,30/6,4470,"UK Mobile (Personal) & Co",\n';
    const { rows, errors } = parseRateCsv(sheet, DEFAULT_AT);
    assert.deepEqual(errors, []);
    assert.deepEqual(
      rows.map((row) => [
        row.prefix,
        row.destination_name,
        row.rate_per_minute,
        row.billing_increment_initial,
        row.billing_increment_step,
        row.effective_at,
      ]),
      [
        ['44', 'United Kingdom, Fixed', '0.0300', 60, 60, DEFAULT_AT],
        ['4470', 'UK Mobile (Personal) & Co', '0.5', 30, 6, DEFAULT_AT],
      ],
    );
  });

  it('reports every broken row by line and keeps none', () => {
    const csv = `prefix,destination_name,rate,billing_increment,rate_type\n61,Australia,0.01,1/1,per_minute\n61a,Bad,0.01,,\n62,,1e-3,6-6,per_second\n63,Fine,0.02,,\n64,"Nul\u0000Name",0.02,,\n65,${'x'.repeat(256)},0.02,,\n66,${'y'.repeat(255)},0.02,,\n`;
    const { errors } = parseRateCsv(csv, DEFAULT_AT);
    assert.deepEqual(errors, [
      'line 3: invalid prefix "61a"',
      'line 4: destination_name is empty; invalid rate "1e-3"; invalid billing_increment "6-6" (expected like 60/60); invalid rate_type',
      'line 6: destination_name contains the NUL character',
      'line 7: destination_name is longer than 255 characters',
    ]);
  });

  it('parses increments strictly', () => {
    assert.deepEqual(['60/60', ' 6 / 6 ', '1/1', '30/6', '0/1', '6', '1/1/1', 'a/b'].map(parseIncrement), [
      [60, 60],
      [6, 6],
      [1, 1],
      [30, 6],
      null,
      null,
      null,
      null,
    ]);
  });
});

forEachEngine('rate import over HTTP', (engine) => {
  let centre: Centre;
  let control: SidecarProcess;
  let deckId: number;
  before(async () => {
    centre = await startCentre(engine, 'rate_import');
    control = centre.control;
    deckId = (await control.send('POST', '/api/rate-decks', { name: 'Cost', deck_type: 'carrier', currency: 'AUD' })).body.id;
  });
  after(() => centre.stop());

  const rates = (prefixes: string[], rate: string) =>
    prefixes.map((prefix) => ({ prefix, destination_name: `D ${prefix}`, rate_per_minute: rate, effective_at: '2025-06-01T00:00:00Z' }));
  const ratesOf = async (): Promise<Map<string, string>> =>
    new Map(
      (await control.get(`/api/rate-decks/${deckId}/rates?page_size=1000`)).body.data.map(
        (row: { prefix: string; rate_per_minute: string }) => [row.prefix, row.rate_per_minute],
      ),
    );

  it('imports in bulk, and handles conflicts by on_conflict', async () => {
    const first = await control.send('POST', `/api/rate-decks/${deckId}/rates/bulk`, { rates: rates(['61', '614'], '0.0100') });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.deepEqual([first.body.imported, first.body.updated, first.body.skipped], [2, 0, 0]);
    const skip = await control.send('POST', `/api/rate-decks/${deckId}/rates/bulk`, { rates: rates(['614', '615'], '0.0200') });
    assert.deepEqual([skip.body.imported, skip.body.updated, skip.body.skipped], [1, 0, 1]);
    assert.equal((await ratesOf()).get('614'), '0.0100');
    const overwrite = await control.send('POST', `/api/rate-decks/${deckId}/rates/bulk`, {
      rates: rates(['614'], '0.0300'),
      on_conflict: 'overwrite',
    });
    assert.deepEqual([overwrite.body.imported, overwrite.body.updated], [0, 1]);
    assert.equal((await ratesOf()).get('614'), '0.0300');
    const refused = await control.send('POST', `/api/rate-decks/${deckId}/rates/bulk`, {
      rates: rates(['616', '61'], '0.0400'),
      on_conflict: 'error',
    });
    assert.equal(refused.status, 409);
    assert.match(refused.body.error, /row 2: rate for prefix 61/);
    assert.equal((await ratesOf()).has('616'), false, 'the whole batch was rolled back');
  });

  it('refuses bad bulk bodies, changing nothing', async () => {
    const before = (await ratesOf()).size;
    for (const [body, pattern] of [
      [{ rates: [] }, /non-empty array/],
      [{ rates: rates(['70'], '0.1'), on_conflict: 'merge' }, /on_conflict/],
      [
        { rates: [...rates(['71'], '0.1'), { prefix: '72', destination_name: 'x', rate_per_minute: 'abc' }] },
        /rates\[1\]: rate_per_minute/,
      ],
      [{ rates: ['x'] }, /rates\[0\] must be an object/],
    ] as const) {
      const response = await control.send('POST', `/api/rate-decks/${deckId}/rates/bulk`, body);
      assert.equal(response.status, 400, JSON.stringify(response.body));
      assert.match(response.body.error, pattern);
    }
    assert.equal((await ratesOf()).size, before);
  });

  const upload = async (csv: string, fields: Record<string, string> = {}): Promise<{ status: number; body: any }> => {
    const form = new FormData();
    form.append('file', new Blob([csv], { type: 'text/csv' }), 'deck.csv');
    for (const [name, value] of Object.entries(fields)) form.append(name, value);
    const response = await fetch(`${control.url}/api/rate-decks/${deckId}/rates/csv`, { method: 'POST', body: form });
    return { status: response.status, body: await response.json() };
  };

  it('imports a CSV upload, and refuses a file with a broken row whole', async () => {
    const ok = await upload(
      'prefix,destination_name,rate,billing_increment\n8801,Bangladesh Mobile,0.0150,60/60\n8802,"Dhaka, Fixed",0.0120,6/6\n',
      { effective_at: '2025-07-01' },
    );
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
    assert.equal(ok.body.count, 2);
    const stored = (await control.get(`/api/rate-decks/${deckId}/rates?prefix=8802`)).body.data[0];
    assert.deepEqual(
      [stored.destination_name, stored.billing_increment_initial, stored.effective_at],
      ['Dhaka, Fixed', 6, '2025-07-01T00:00:00.000Z'],
    );
    const before = (await ratesOf()).size;
    const broken = await upload('prefix,destination_name,rate\n8803,Ok,0.01\n8804,Bad,not-a-rate\n');
    assert.equal(broken.status, 400);
    assert.deepEqual(broken.body.errors, ['line 3: invalid rate "not-a-rate"']);
    assert.equal((await ratesOf()).size, before);
    const notMultipart = await control.send('POST', `/api/rate-decks/${deckId}/rates/csv`, { file: 'x' });
    assert.equal(notMultipart.status, 400);
  });
});
