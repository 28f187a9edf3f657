/**
 * What the PostgreSQL store benches share: the server's CPU for this bench's connections (on a loaded
 * machine the CPU is the figure to compare, not the wall time) and a fresh rate deck to import into.
 */
import { readFileSync } from 'node:fs';
import type pg from 'pg';
import type { ConfigStore } from '../sync/store/config-store.js';

/** CPU seconds the server backends of connections named `application` (application_name) have used so far. */
export async function backendCpu(admin: pg.Client, application: string): Promise<number> {
  const { rows } = await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [application]);
  let ticks = 0;
  for (const { pid } of rows) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // the backend ended between the query and the read
    }
  }
  return ticks / 100;
}

/** A new, empty sell deck named `bench` in `currency`: its id. */
export async function newRateDeck(store: ConfigStore, currency: string): Promise<number> {
  const now = new Date().toISOString();
  const deck = await store.insert('rate_decks', {
    name: 'bench',
    deck_type: 'sell',
    currency,
    description: null,
    created_at: now,
    updated_at: now,
  });
  return deck.id as number;
}
