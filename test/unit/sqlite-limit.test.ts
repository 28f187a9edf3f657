import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { sqliteLimit, StatementsPerLimit } from '../../src/core/sqlite/limit.js';

describe('a SQLite LIMIT written into the text', () => {
  const db = new Database(':memory:');
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY)');
  const insert = db.prepare('INSERT INTO t (id) VALUES (?)');
  for (let id = 1; id <= 10; id++) insert.run(id);

  it('writes only a safe integer into the text, and binds anything else', () => {
    assert.deepEqual(sqliteLimit(20), { sql: 'LIMIT 20', params: [] });
    assert.deepEqual(sqliteLimit(-1), { sql: 'LIMIT -1', params: [] });
    for (const limit of [2.5, NaN, Infinity, 2 ** 53]) assert.deepEqual(sqliteLimit(limit), { sql: 'LIMIT ?', params: [limit] });
  });

  it('reads the same rows as a bound LIMIT, the offset still bound', () => {
    const page = sqliteLimit(3);
    const written = db.prepare(`SELECT id FROM t ORDER BY id ${page.sql} OFFSET ?`).all(...page.params, 4);
    assert.deepEqual(written, db.prepare('SELECT id FROM t ORDER BY id LIMIT ? OFFSET ?').all(3, 4));
    assert.deepEqual(written, [{ id: 5 }, { id: 6 }, { id: 7 }]);
  });

  it('prepares a statement once per limit and runs it again after', () => {
    const prepared: string[] = [];
    const statements = new StatementsPerLimit((limit) => {
      prepared.push(limit);
      return db.prepare(`SELECT id FROM t WHERE id > ? ORDER BY id ${limit}`);
    });
    const read = (after: number, limit: number): unknown[] => {
      const { statement, params } = statements.get(limit);
      return statement.all(after, ...params);
    };
    assert.deepEqual(read(0, 2), [{ id: 1 }, { id: 2 }]);
    assert.deepEqual(read(8, 2), [{ id: 9 }, { id: 10 }]);
    assert.deepEqual(read(5, 1), [{ id: 6 }]);
    assert.deepEqual(prepared, ['LIMIT 2', 'LIMIT 1']);
  });
});
