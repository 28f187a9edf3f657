import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_TEMPLATE, loadValues, renderTemplate } from '../../src/cli/opensips-config.js';
import { REPO } from '../../src/devkit/paths.js';

/**
 * What the OpenSIPS script's route[spool] does, done here: the INSERT is taken from the rendered script
 * and its variables filled as OpenSIPS fills them ($param(1) the kind, $var(spool_body) the body in base64
 * by {s.b64encode}, $Ts the Unix time), then run on the spool file with SQLite, as db_sqlite would.
 */
export function spoolStatement(): string {
  const values = loadValues(JSON.parse(readFileSync(join(REPO, 'opensips-config', 'values.example.json'), 'utf8')) as unknown);
  const script = renderTemplate(readFileSync(DEFAULT_TEMPLATE, 'utf8'), values);
  const match = /route\[spool\] \{[\s\S]*?sql_query\("([^"]+)"\)/.exec(script);
  assert.ok(match !== null, 'route[spool] runs one sql_query');
  return match[1];
}

export type Spooled = ['cdr' | 'release', Record<string, unknown>];

/** One INSERT per request, as OpenSIPS makes them (here on one connection). */
export function spool(path: string, requests: Spooled[], statement = spoolStatement()): void {
  const db = new Database(path);
  try {
    spoolInto(db, requests, statement);
  } finally {
    db.close();
  }
}

/** The same INSERTs on a connection the caller holds (in a transaction of its own, say). */
export function spoolInto(db: Database.Database, requests: Spooled[], statement = spoolStatement()): void {
  for (const [kind, body] of requests) {
    const sql = statement
      .replace("'$param(1)'", `'${kind}'`)
      .replace("'$var(spool_body)'", `'${Buffer.from(JSON.stringify(body)).toString('base64')}'`)
      .replace('$Ts', String(Math.floor(Date.now() / 1000)));
    assert.doesNotMatch(sql, /\$/, `every variable of ${statement} is filled`);
    db.exec(sql);
  }
}

export function spooledRows(path: string): number {
  const db = new Database(path, { readonly: true });
  try {
    return (db.prepare('SELECT COUNT(*) AS n FROM opensips_spool').get() as { n: number }).n;
  } finally {
    db.close();
  }
}
