/**
 * What a bound LIMIT costs SQLite: the same prepared statement run 100k times over a 10k-row table, its
 * LIMIT bound (`LIMIT ?`, compiled again each time it is bound) against written into the text
 * (src/core/sqlite/limit.ts). CPU per run (process.cpuUsage), which holds on a loaded machine; each pair
 * in turn, three rounds.
 *
 *   node dist/bench/sqlite-limit.js
 */
import Database from 'better-sqlite3';
import { sqliteLimit } from '../src/core/sqlite/limit.js';

const ROWS = 10_000;
const RUNS = 100_000;

const db = new Database(':memory:');
db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
db.transaction(() => {
  for (let i = 0; i < ROWS; i++) insert.run(`row ${i}`);
})();

function cpuMicrosPerRun(run: (i: number) => unknown): number {
  for (let i = 0; i < RUNS / 20; i++) run(i);
  const started = process.cpuUsage();
  for (let i = 0; i < RUNS; i++) run(i);
  const used = process.cpuUsage(started);
  return Math.round(((used.user + used.system) / RUNS) * 100) / 100;
}

const written = (limit: number): string => sqliteLimit(limit).sql;
/** The shapes in the code: a read after a sequence (the delta log), a batch (the spool), a page (the listings). */
const shapes = [
  {
    name: 'WHERE id > ? ORDER BY id LIMIT 10',
    bound: 'WHERE id > ? ORDER BY id LIMIT ?',
    text: `WHERE id > ? ORDER BY id ${written(10)}`,
    after: true,
  },
  { name: 'ORDER BY id LIMIT 10', bound: 'ORDER BY id LIMIT ?', text: `ORDER BY id ${written(10)}`, after: false },
  {
    name: 'ORDER BY id DESC LIMIT 50 OFFSET ?',
    bound: 'ORDER BY id DESC LIMIT ? OFFSET ?',
    text: `ORDER BY id DESC ${written(50)} OFFSET ?`,
    after: false,
  },
];

console.log(`SQLite ${(db.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v}, ${ROWS} rows, ${RUNS} runs each`);
for (const shape of shapes) {
  const bound = db.prepare(`SELECT id, v FROM t ${shape.bound}`);
  const text = db.prepare(`SELECT id, v FROM t ${shape.text}`);
  const offset = shape.name.includes('OFFSET');
  const limit = offset ? 50 : 10;
  const figures: string[] = [];
  for (let round = 0; round < 3; round++) {
    const b = cpuMicrosPerRun((i) => (shape.after ? bound.all(i % (ROWS - 100), limit) : offset ? bound.all(limit, 0) : bound.all(limit)));
    const t = cpuMicrosPerRun((i) => (shape.after ? text.all(i % (ROWS - 100)) : offset ? text.all(0) : text.all()));
    figures.push(`${b} / ${t}`);
  }
  console.log(`${shape.name}: bound / written, CPU µs a run: ${figures.join(', ')}`);
}
