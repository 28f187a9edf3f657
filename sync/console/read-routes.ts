import { RequestError } from '../../src/core/http/errors.js';
import { guard } from '../../src/core/http/guard.js';
import { parseQuery, queryInteger } from '../../src/core/http/query.js';
import { json } from '../../src/core/http/respond.js';
import type { IncomingRequest, OutgoingResponse, Route } from '../../src/core/http/server.js';
import type { SyncJob } from '../distribution/sync-job.js';
import { SYNC_HISTORY_SIZE } from '../distribution/sync-history.js';
import type { LedgerStore } from '../ledger/store.js';
import type { ConfigStore, Row } from '../store/config-store.js';
import type { MetricsSampler } from './metrics-sampler.js';

/**
 * The reads the console's Sync, Accounts, Rates and Live pages make that no admin endpoint answered: the sync
 * history, an account's leases per node, a number's rate in every deck, and the last hour of the sidecars'
 * counters. Each takes only the query parameters it names (anything else is refused) and answers a bounded list.
 */
export interface ConsoleReadContext {
  store: ConfigStore;
  ledger: LedgerStore;
  syncJob: SyncJob;
  metricsSampler: MetricsSampler;
}

/** A number as dialled: digits, an optional leading `+`; the longest E.164 number is 15 digits, a prefix fewer. */
const NUMBER = /^\+?([0-9]{1,20})$/;

function read(path: string, handler: (request: IncomingRequest) => Promise<OutgoingResponse> | OutgoingResponse): Route {
  return { method: 'GET', path, maxBodyBytes: 0, handler: guard(handler) };
}

/**
 * Each deck's rate for `digits` as routing would use it now: the longest prefix with terms in force (a rate
 * whose terms start later does not match yet; a revised rate's earlier terms, kept as a history row, still do).
 */
async function ratesFor(store: ConfigStore, digits: string, now: number): Promise<Map<number, Row>> {
  const best = new Map<number, Row>();
  for (let length = digits.length; length >= 1; length--) {
    const { rows } = await store.list('rate_deck_rates', { where: { prefix: digits.slice(0, length) }, limit: null, offset: 0 });
    const found = new Map<number, Row>();
    for (const row of rows) {
      const deck = row.rate_deck_id as number;
      const from = Date.parse(String(row.effective_at));
      if (best.has(deck) || !(from <= now)) continue;
      const held = found.get(deck);
      if (held === undefined || Date.parse(String(held.effective_at)) < from) found.set(deck, row);
    }
    for (const [deck, row] of found) best.set(deck, row);
  }
  return best;
}

export function consoleReadRoutes(context: ConsoleReadContext): Route[] {
  return [
    read('/api/console/syncs', (request) => {
      const params = parseQuery(request.query, ['limit']);
      if (params.getAll('limit').length > 1) throw new RequestError('invalid_parameter', 'limit given more than once');
      const limit = queryInteger(params, 'limit', 1, SYNC_HISTORY_SIZE) ?? SYNC_HISTORY_SIZE;
      return json(200, { running: context.syncJob.history.running(), data: context.syncJob.history.list(limit) });
    }),

    read('/api/console/live', (request) => {
      parseQuery(request.query, []);
      return json(200, context.metricsSampler.live(Date.now()));
    }),

    read('/api/console/accounts/{entity_type}/{entity_id}/leases', async (request) => {
      parseQuery(request.query, []);
      const type = request.params.entity_type;
      if (type !== 'customer' && type !== 'carrier') throw new RequestError('invalid_parameter', 'entity_type must be customer or carrier');
      if (!/^[1-9][0-9]{0,15}$/.test(request.params.entity_id))
        throw new RequestError('invalid_parameter', 'entity_id must be a positive integer');
      return json(200, { data: await context.ledger.leasesOf(type, Number(request.params.entity_id)) });
    }),

    read('/api/console/rates', async (request) => {
      const params = parseQuery(request.query, ['number']);
      const given = params.getAll('number');
      const match = given.length === 1 ? NUMBER.exec(given[0]) : null;
      if (match === null) throw new RequestError('invalid_parameter', 'number must be 1 to 20 digits, optionally after a +');
      const [{ rows: decks }, rates] = await Promise.all([
        context.store.list('rate_decks', { where: {}, limit: null, offset: 0, orderBy: 'id' }),
        ratesFor(context.store, match[1], Date.now()),
      ]);
      return json(200, {
        number: match[1],
        data: decks.map((deck) => {
          const rate = rates.get(deck.id as number) ?? null;
          return {
            rate_deck_id: deck.id,
            name: deck.name,
            deck_type: deck.deck_type,
            currency: deck.currency,
            rate:
              rate === null
                ? null
                : {
                    id: rate.id,
                    prefix: rate.prefix,
                    destination_name: rate.destination_name,
                    rate_per_minute: rate.rate_per_minute,
                    rate_type: rate.rate_type,
                    billing_increment_initial: rate.billing_increment_initial,
                    billing_increment_step: rate.billing_increment_step,
                    effective_at: rate.effective_at,
                  },
          };
        }),
      });
    }),
  ];
}
