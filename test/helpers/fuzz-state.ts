/**
 * The state a fuzz run must leave unchanged, read two ways: what the processes answer to every read route
 * of their route table (parameters filled with the world's existing ids), and every row of their SQLite
 * databases, read-only from outside. Values that move with the clock alone (a timestamp of now, uptime)
 * are left out, and so are answers that are not JSON (Prometheus text counts the requests themselves).
 */
import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { request as httpRequest } from 'node:http';
import type { FuzzRoute, FuzzWorld } from './fuzz-requests.js';

// checked_at: when the console's Network read asked the sidecars (GET /api/console/network). seen_at: when a node
// last asked for deltas (GET /api/opensips/deltas): its held ask comes back every --delta-wait-ms (8 s) however
// quiet the centre, so a fuzz phase longer than that (a loaded machine) saw it move. from: where the console's
// Live window starts (GET /api/console/live: the last hour, in whole minutes), which moves when a minute turns.
const CLOCK_FIELDS = new Set(['timestamp', 'uptime_seconds', 'snapshot_age_seconds', 'checked_at', 'seen_at', 'from']);

function withoutClock(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutClock);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key]) => !CLOCK_FIELDS.has(key))
      .map(([key, item]) => [key, withoutClock(item)]),
  );
}

function get(port: number, path: string): Promise<{ status: number; type: string; text: string }> {
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest({ host: '127.0.0.1', port, path, method: 'GET', signal: AbortSignal.timeout(5000) }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, type: String(response.headers['content-type']), text }));
    });
    outgoing.on('error', reject);
    outgoing.end();
  });
}

/** Every path a read route names with the world's existing parameter values (every combination). */
function readPaths(routes: readonly FuzzRoute[], world: FuzzWorld): string[] {
  const paths: string[] = [];
  for (const route of routes) {
    if (route.method !== 'GET') continue;
    let filled = [route.path];
    for (const [, name] of route.path.matchAll(/\{([^}]+)\}/g)) {
      filled = filled.flatMap((path) => world.existing(name).map((value) => path.replace(`{${name}}`, value)));
    }
    paths.push(...filled);
  }
  return paths;
}

/** The answers of every read route, as one text per path. */
export async function readRouteState(port: number, routes: readonly FuzzRoute[], world: FuzzWorld): Promise<Record<string, string>> {
  const state: Record<string, string> = {};
  for (const path of readPaths(routes, world)) {
    const answer = await get(port, path);
    const body = answer.type.startsWith('application/json') ? JSON.stringify(withoutClock(JSON.parse(answer.text))) : '(not JSON)';
    state[path] = `${answer.status} ${body}`;
  }
  return state;
}

/** A digest of each table of a SQLite file (opened read-only: the process keeps writing it). */
export function databaseState(file: string): Record<string, string> {
  if (!existsSync(file)) return { [file]: 'absent' };
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as {
      name: string;
    }[];
    const state: Record<string, string> = {};
    for (const { name } of tables) {
      const hash = createHash('sha256');
      for (const row of db.prepare(`SELECT * FROM "${name}"`).iterate())
        hash.update(JSON.stringify(row, (_, value: unknown) => (Buffer.isBuffer(value) ? value.toString('base64') : value)));
      state[`${file}:${name}`] = hash.digest('hex');
    }
    return state;
  } finally {
    db.close();
  }
}

/**
 * The sizes of the append-only logs under `dir` (the sidecar's money log, `money.db-log/*.log`): an answer
 * that acknowledges money is journalled there first, so a refused request must leave them as they were.
 */
export function logFilesState(dir: string): Record<string, string> {
  const state: Record<string, string> = {};
  for (const entry of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    const path = join(dir, entry);
    if (entry.endsWith('.log') && statSync(path).isFile()) state[path] = `${statSync(path).size} bytes`;
  }
  return state;
}
