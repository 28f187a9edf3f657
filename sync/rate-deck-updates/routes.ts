import type { Logger } from 'pino';
import { RequestError } from '../../src/core/http/errors.js';
import { parseQuery } from '../../src/core/http/query.js';
import { json, NO_CONTENT } from '../../src/core/http/respond.js';
import type { Route } from '../../src/core/http/server.js';
import { storeValues, type Fields } from '../admin/fields.js';
import { RATE_DECK_RATES, RATE_DECKS } from '../admin/resources.js';
import { adminRoute, mustExist, PAGE_PARAMS, pageOf, pathId, readBody, type AdminHandler } from '../http/handlers.js';
import type { ConfigStore, Row } from '../store/config-store.js';
import type { RateDeckScheduler } from './scheduler.js';
import type { UpdateRate } from './steps.js';
import type { RateDeckUpdateStore, Reinstatement, UpdateStatus } from './store.js';

/**
 * `/api/rate-deck-updates`: list, create, get, delete (pending only), and a customer trunk's download
 * acknowledgement. The scheduler (scheduler.ts) does the activating; these routes re-arm it.
 */
export interface RateDeckUpdateContext {
  store: ConfigStore;
  deckUpdates: RateDeckUpdateStore;
  scheduler: RateDeckScheduler;
  maxBodyBytes: number;
  log: Logger;
  /** A routing sync for a change the sidecars must see (rates brought or taken away, a trunk reinstated). */
  requestSync: (reason: string) => void;
}

const PATH = '/api/rate-deck-updates';
const UPDATE_TYPES = ['incremental', 'full_replace'] as const;
/** The prose's spellings (`customer` or `carrier`) name the deck's kind: accepted, stored as incremental (contract note 43). */
const DECK_KINDS = ['customer', 'carrier'] as const;
const STATUSES: readonly UpdateStatus[] = ['pending', 'active', 'superseded'];

const UPDATE_FIELDS: Fields = {
  rate_deck_id: { kind: 'integer', required: true, min: 1 },
  update_type: { kind: { enum: [...UPDATE_TYPES, ...DECK_KINDS] }, required: true },
  effective_at: { kind: 'datetime', required: true },
  /** Added: suspend the deck's active customer trunks at activation until each downloads the update. */
  suspend_until_downloaded: { kind: 'boolean', default: false },
  created_by: { kind: 'integer', nullable: true, min: 1 },
};

/** A rate an update brings: a rate row's fields without effective_at, which is the update's. */
const RATE_FIELDS: Fields = Object.fromEntries(Object.entries(RATE_DECK_RATES.fields).filter(([name]) => name !== 'effective_at'));
const MAX_RATES = 10_000;

/** An update as the contract's RateDeckUpdate shows it, with the added fields. */
function shown(row: Row, rates: number): Record<string, unknown> {
  return {
    id: row.id,
    rate_deck_id: row.rate_deck_id,
    update_type: row.update_type,
    status: row.status,
    effective_at: row.effective_at,
    activated_at: row.activated_at,
    created_by: row.created_by,
    created_at: row.created_at,
    suspend_until_downloaded: row.suspend_until_downloaded === 1,
    superseded_at: row.superseded_at,
    rate_count: rates,
  };
}

function ratesIn(body: Record<string, unknown>): UpdateRate[] {
  const given = body.rates;
  if (given === undefined || given === null) return [];
  if (!Array.isArray(given)) throw new RequestError('invalid_field', 'rates must be an array of rates');
  if (given.length > MAX_RATES)
    throw new RequestError('invalid_field', `rates takes at most ${MAX_RATES} rates; import larger sheets first`);
  const prefixes = new Set<string>();
  return given.map((item: unknown, index) => {
    if (typeof item !== 'object' || item === null || Array.isArray(item))
      throw new RequestError('invalid_field', `rates[${index}] must be an object`);
    let values: Row;
    try {
      values = storeValues(RATE_FIELDS, item as Record<string, unknown>, 'create');
    } catch (error) {
      if (error instanceof RequestError) throw new RequestError('invalid_field', `rates[${index}]: ${error.message}`);
      throw error;
    }
    // Two rows for one prefix at one time would make the deck ambiguous (and break its unique key).
    if (prefixes.has(values.prefix as string))
      throw new RequestError('invalid_field', `rates[${index}]: prefix ${String(values.prefix)} is given twice`);
    prefixes.add(values.prefix as string);
    return values as unknown as UpdateRate;
  });
}

export function rateDeckUpdateRoutes(context: RateDeckUpdateContext): Route[] {
  const { store, deckUpdates, scheduler } = context;
  const routes: Route[] = [];
  const add = (method: Route['method'], path: string, handler: AdminHandler): void => {
    routes.push(adminRoute(method, path, context.maxBodyBytes, handler));
  };
  const mustFind = async (id: number): Promise<Row> => {
    const row = await deckUpdates.get(id);
    if (row === null) throw new RequestError('not_found', `rate deck update ${id} not found`);
    return row;
  };

  // A bare array, as the schema answers (the prose's {data, meta} example is the other reading: note 43).
  add('GET', PATH, async (request) => {
    const params = parseQuery(request.query, ['status', ...PAGE_PARAMS]);
    const status = params.get('status');
    if (status !== null && !STATUSES.includes(status as UpdateStatus))
      throw new RequestError('invalid_parameter', `status must be one of ${STATUSES.join(', ')}`);
    const page = pageOf(params);
    const rows = await deckUpdates.list(status as UpdateStatus | null, page.limit, page.offset);
    const shownRows: Record<string, unknown>[] = [];
    for (const row of rows) shownRows.push(shown(row, await deckUpdates.ratesOf(row.id as number)));
    return json(200, shownRows);
  });

  add('POST', PATH, async (request) => {
    const body = readBody(request);
    const values = storeValues(UPDATE_FIELDS, body, 'create');
    const rates = ratesIn(body);
    const deckId = values.rate_deck_id as number;
    const deck = await store.get(RATE_DECKS.table, deckId);
    if (deck === null) throw new RequestError('unknown_reference', `rate_deck_id ${deckId} does not exist`);
    let updateType = values.update_type as string;
    if ((DECK_KINDS as readonly string[]).includes(updateType)) {
      if (deck.deck_type !== updateType)
        throw new RequestError(
          'reference_mismatch',
          `rate deck ${deckId} is a ${String(deck.deck_type)} deck; update_type ${updateType} names the other kind`,
        );
      updateType = 'incremental';
    }
    const created = await deckUpdates.create(
      {
        rate_deck_id: deckId,
        update_type: updateType,
        effective_at: values.effective_at as string,
        suspend_until_downloaded: values.suspend_until_downloaded === 1,
        created_by: values.created_by as number | null,
      },
      rates,
      new Date().toISOString(),
    );
    // Sidecars hold the new rates ahead of their time, so they switch at it even if this process is down then.
    if (rates.length > 0) context.requestSync(`rate deck update ${String(created.id)} brought ${rates.length} rates`);
    // One already due is activated here, before the answer, which then shows it as it is (active).
    await scheduler.rearm();
    return json(201, shown((await deckUpdates.get(created.id as number)) ?? created, rates.length));
  });

  add('GET', `${PATH}/{id}`, async (request) => {
    const row = await mustFind(pathId(request, 'id'));
    // Added: who was told, suspended, downloaded, reinstated: the acknowledgements the contract says it tracks.
    const notifications = (await deckUpdates.notifications(row.id as number)).map((notification) => ({
      customer_trunk_id: notification.customer_trunk_id,
      notified_at: notification.notified_at,
      suspended_at: notification.suspended_at,
      downloaded_at: notification.downloaded_at,
      reinstated_at: notification.reinstated_at,
    }));
    return json(200, { ...shown(row, await deckUpdates.ratesOf(row.id as number)), notifications });
  });

  add('DELETE', `${PATH}/{id}`, async (request) => {
    const id = pathId(request, 'id');
    // An update already due is activated, not deleted: its rates may have priced calls by now.
    await scheduler.activateDue();
    const rates = await deckUpdates.ratesOf(id);
    const outcome = await deckUpdates.removePending(id);
    if (outcome === 'not_found') throw new RequestError('not_found', `rate deck update ${id} not found`);
    if (outcome === 'not_pending')
      throw new RequestError(
        'update_not_pending',
        `rate deck update ${id} is ${String((await mustFind(id)).status)}; only a pending update can be deleted`,
      );
    if (rates > 0) context.requestSync(`rate deck update ${id} deleted with its ${rates} rates`);
    await scheduler.rearm();
    return NO_CONTENT;
  });

  add('POST', `${PATH}/{id}/download/{trunk_id}`, async (request) => {
    const id = pathId(request, 'id');
    const trunkId = pathId(request, 'trunk_id');
    await mustFind(id);
    await mustExist(store, 'customer_trunks', trunkId, 'customer trunk');
    const now = new Date().toISOString();
    const notification = await deckUpdates.recordDownload(id, trunkId, now);
    if (notification === null)
      throw new RequestError(
        'not_found',
        `customer trunk ${trunkId} was not notified of rate deck update ${id} (not on its deck when it activated, or not active yet)`,
      );
    // The contract: a reinstatement that fails is logged and does not fail the request; the download stands.
    let reinstatement: Reinstatement = { reinstated: false, stillSuspendedBy: [] };
    try {
      reinstatement = await deckUpdates.reinstate(notification, now);
    } catch (error) {
      context.log.error({ err: error, rate_deck_update_id: id, customer_trunk_id: trunkId }, 'download recorded, trunk not reinstated');
    }
    if (reinstatement.reinstated) context.requestSync(`customer trunk ${trunkId} reinstated by its download of rate deck update ${id}`);
    return json(200, {
      message: 'rate deck downloaded',
      reinstated: reinstatement.reinstated,
      ...(reinstatement.stillSuspendedBy.length > 0 ? { still_suspended_by: reinstatement.stillSuspendedBy } : {}),
    });
  });

  return routes;
}
