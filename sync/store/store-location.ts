import { redactDatabaseUrl } from './database-url.js';

/**
 * Where the centre keeps its stores, from `--store`: the embedded SQLite file (a path, or `sqlite:<path>`),
 * or a PostgreSQL database (`postgres://…` or `postgresql://…`, as libpq spells it). `shown` is what logs
 * and messages name: the URL without its password.
 */
export type StoreLocation = { engine: 'sqlite'; path: string; shown: string } | { engine: 'postgres'; url: string; shown: string };

export function parseStoreLocation(text: string): StoreLocation {
  const trimmed = text.trim();
  if (trimmed === '') throw new Error('--store is empty: give a file path, sqlite:<path> or postgres://…');
  if (/^postgres(ql)?:\/\//i.test(trimmed)) {
    let url: URL;
    try {
      url = new URL(trimmed);
    } catch {
      throw new Error('--store is not a valid postgres:// URL');
    }
    if (url.hostname === '' || url.pathname.length <= 1)
      throw new Error(`--store ${redactDatabaseUrl(url)} names no host or no database (postgres://user@host:5432/database)`);
    return { engine: 'postgres', url: trimmed, shown: redactDatabaseUrl(url) };
  }
  const path = trimmed.startsWith('sqlite:') ? trimmed.slice('sqlite:'.length) : trimmed;
  // Any other scheme is a mistake (mysql://, a typo), never a file named so.
  if (path === '' || /^[a-z][a-z0-9+.-]*:\/\//i.test(path))
    throw new Error(
      `--store ${JSON.stringify(trimmed.replace(/\/\/[^@/]*@/, '//***@'))} is neither a file path, sqlite:<path> nor postgres://…`,
    );
  return { engine: 'sqlite', path, shown: path };
}
