import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { pino } from 'pino';
import { OpensipsSpool, PARKED_RETRIES, SPOOL_SCHEMA, SpoolPark } from '../../src/sidecar/cdr/spool.js';

/**
 * The spool's parking lot on its own (the process test drives it through a real sidecar and sync): a CDR the
 * handler cannot rate is kept, tried again only after the serving state changes, at most PARKED_RETRIES a
 * pass, and dropped once older than the park days.
 */
describe('OpenSIPS spool: parked CDRs', () => {
  let dir: string;
  let path: string;
  let spool: OpensipsSpool;
  let state: number;
  /** Call-IDs the handler cannot rate now. */
  let gaps: Set<string>;
  /** Call-IDs the node holds another CDR under (the handler answers them cdr_conflict). */
  let held: Set<string>;
  let attempts: Map<string, number>;
  let logs: { msg: string; sip_call_id?: string; reason?: string }[];

  const insert = (callIds: string[], createdAt = Math.floor(Date.now() / 1000)): void => {
    const db = new Database(path);
    const statement = db.prepare("INSERT INTO opensips_spool (kind, body, created_at) VALUES ('cdr', ?, ?)");
    for (const callId of callIds) statement.run(Buffer.from(JSON.stringify({ sip_call_id: callId })).toString('base64'), createdAt);
    db.close();
  };
  const rows = (): number => {
    const db = new Database(path, { readonly: true });
    const { n } = db.prepare('SELECT COUNT(*) AS n FROM opensips_spool').get() as { n: number };
    db.close();
    return n;
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'spool-parking-'));
    path = join(dir, 'spool.db');
    state = 1;
    gaps = new Set();
    held = new Set();
    attempts = new Map();
    logs = [];
    const db = new Database(path);
    db.exec(SPOOL_SCHEMA);
    db.close();
    const log = pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line) as (typeof logs)[number]) });
    const cdr = (body: Record<string, unknown>): Promise<void> => {
      const callId = String(body.sip_call_id);
      attempts.set(callId, (attempts.get(callId) ?? 0) + 1);
      if (held.has(callId)) return Promise.reject(new SpoolPark('cdr_conflict', `another CDR under ${callId}`, 'call_id_free'));
      return gaps.has(callId) ? Promise.reject(new SpoolPark('unrateable_cdr', `no rate for ${callId}`)) : Promise.resolve();
    };
    spool = new OpensipsSpool(path, { cdr, release: () => Promise.resolve() }, 65_536, log, {
      servingState: () => String(state),
      holdsCdr: (callId) => held.has(callId),
      parkDays: 7,
    });
  });
  afterEach(() => {
    spool.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps the CDR it cannot rate, takes those behind it, and rates it again only after the serving state changes', async () => {
    gaps.add('gap@t');
    insert(['gap@t', 'behind@t']);
    assert.equal(await spool.drain(), 1);
    assert.deepEqual([rows(), spool.parkedCount, attempts.get('behind@t')], [1, 1, 1]);
    const parked = logs.filter((line) => line.msg.startsWith('spooled CDR parked'));
    assert.deepEqual(
      parked.map((line) => [line.reason, line.sip_call_id]),
      [['unrateable_cdr', 'gap@t']],
    );

    insert(['later@t']);
    assert.equal(await spool.drain(), 1, 'a row spooled after the parked one is taken');
    assert.equal(attempts.get('gap@t'), 1, 'not rated again while nothing changed');

    state = 2;
    await spool.drain();
    assert.deepEqual([attempts.get('gap@t'), rows(), spool.parkedCount], [2, 1, 1]);
    assert.equal(logs.filter((line) => line.msg.startsWith('spooled CDR parked')).length, 1, 'parked once in the log');

    gaps.clear();
    state = 3;
    assert.equal(await spool.drain(), 1);
    assert.deepEqual([attempts.get('gap@t'), rows(), spool.parkedCount], [3, 0, 0]);
    assert.ok(logs.some((line) => line.msg === 'parked CDR billed' && line.sip_call_id === 'gap@t'));
    await spool.drain();
    assert.equal(attempts.get('gap@t'), 3);
  });

  it('keeps a CDR whose Call-ID the node holds another CDR under, and takes it once that one is gone, not before', async () => {
    held.add('reused@t');
    insert(['reused@t']);
    assert.equal(await spool.drain(), 0);
    assert.deepEqual([rows(), spool.parkedCount, spool.holdsParked('reused@t'), spool.holdsParked('other@t')], [1, 1, true, false]);
    assert.ok(logs.some((line) => line.reason === 'cdr_conflict' && line.sip_call_id === 'reused@t'));
    state = 2; // a snapshot changes nothing for it
    await spool.drain();
    assert.equal(attempts.get('reused@t'), 1);

    held.clear(); // the other CDR settled and pruned
    assert.equal(await spool.drain(), 1);
    assert.deepEqual([attempts.get('reused@t'), rows(), spool.parkedCount, spool.holdsParked('reused@t')], [2, 0, 0, false]);
    assert.ok(logs.some((line) => line.msg === 'parked CDR billed' && line.sip_call_id === 'reused@t'));
  });

  it('rates at most PARKED_RETRIES parked CDRs a pass', async () => {
    const callIds = Array.from({ length: PARKED_RETRIES + 5 }, (_, i) => `gap-${i}@t`);
    for (const callId of callIds) gaps.add(callId);
    insert(callIds);
    await spool.drain();
    assert.equal(spool.parkedCount, callIds.length);

    state = 2;
    await spool.drain();
    const tried = (): number => callIds.filter((callId) => attempts.get(callId) === 2).length;
    assert.equal(tried(), PARKED_RETRIES);
    await spool.drain();
    assert.equal(tried(), callIds.length, 'the rest at the next pass, the state still new to them');
  });

  it('drops a CDR parked longer than the park days, with an error', async () => {
    gaps.add('old@t');
    insert(['old@t'], Math.floor(Date.now() / 1000) - 8 * 86_400);
    await spool.drain();
    assert.deepEqual([rows(), spool.parkedCount], [0, 0]);
    assert.ok(logs.some((line) => line.msg.startsWith('parked CDR dropped') && line.sip_call_id === 'old@t'));
  });
});
