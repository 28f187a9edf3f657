import { RequestError } from '../../src/core/http/errors.js';
import { parseQuery, queryFlag } from '../../src/core/http/query.js';
import { json, NO_CONTENT } from '../../src/core/http/respond.js';
import type { Route } from '../../src/core/http/server.js';
import type { SyncJob } from '../distribution/sync-job.js';
import { adminRoute, mustExist, pathId, readBody, type AdminHandler } from '../http/handlers.js';
import { canonicalAddress } from './access.js';
import type { AdminContext } from './crud.js';
import { apiRecord, storeValue, storeValues } from './fields.js';
import { BLOCK_RULES, CARRIER_TRUNKS, CUSTOMER_TRUNKS, EXCHANGE_RATES, RATE_DECKS } from './resources.js';

/**
 * The admin endpoints that are not plain records: the IP allowlist itself, rate-deck assignment, a deck's
 * carrier allowlist, block-rule toggles, the exchange rate in force, and the routing sync.
 */
const AUTH_IP_FIELDS = {
  ip_address: { kind: 'ip', required: true },
  description: { kind: 'string', nullable: true },
  is_active: { kind: 'boolean', default: true },
} as const;

function required(name: string): never {
  throw new RequestError('invalid_field', `${name} is required`);
}

export function adminRoutes(context: AdminContext & { syncJob: SyncJob }): Route[] {
  const { store } = context;
  const routes: Route[] = [];
  const add = (method: Route['method'], path: string, handler: AdminHandler): void => {
    routes.push(adminRoute(method, path, context.maxBodyBytes, handler));
  };
  const changed = (table: string): void => context.onChange?.(table);

  add('GET', '/api/auth/ips', async (request) => {
    const activeOnly = new URLSearchParams(request.query).get('active_only') !== 'false';
    const { rows } = await store.list('auth_ips', { where: activeOnly ? { is_active: 1 } : {}, limit: null, offset: 0 });
    return json(
      200,
      rows.map((row) => apiRecord(AUTH_IP_FIELDS, row)),
    );
  });
  add('POST', '/api/auth/ips', async (request) => {
    const values = storeValues(AUTH_IP_FIELDS, readBody(request), 'create');
    const ip = canonicalAddress(values.ip_address as string);
    const now = new Date().toISOString();
    const existing = (await store.list('auth_ips', { where: { ip_address: ip }, limit: 1, offset: 0 })).rows.at(0);
    if (existing === undefined) await store.insert('auth_ips', { ...values, ip_address: ip, created_at: now, updated_at: now });
    else await store.update('auth_ips', existing.id as number, { ...values, ip_address: ip, updated_at: now });
    return json(201, { message: 'auth ip created', ip_address: ip });
  });

  for (const [kind, trunks] of [
    ['customer', CUSTOMER_TRUNKS],
    ['carrier', CARRIER_TRUNKS],
  ] as const) {
    const table = `${kind}_trunk_rate_decks`;
    const path = `${trunks.path}/{id}/rate-deck`;
    add('GET', path, async (request) => {
      const trunkId = pathId(request, 'id');
      await mustExist(store, trunks.table, trunkId, trunks.noun);
      const { rows } = await store.list(table, { where: { [`${kind}_trunk_id`]: trunkId, is_active: 1 }, limit: 1, offset: 0 });
      if (rows.length === 0) throw new RequestError('not_found', `${trunks.noun} ${trunkId} has no rate deck assigned`);
      return json(200, { ...rows[0], is_active: true });
    });
    add('PUT', path, async (request) => {
      const trunkId = pathId(request, 'id');
      await mustExist(store, trunks.table, trunkId, trunks.noun);
      const deckId = storeValue(
        'rate_deck_id',
        { kind: 'integer', min: 1 },
        readBody(request).rate_deck_id ?? required('rate_deck_id'),
      ) as number;
      const deck = await store.get(RATE_DECKS.table, deckId);
      if (deck === null) throw new RequestError('unknown_reference', `rate_deck_id ${deckId} does not exist`);
      if (deck.deck_type !== kind)
        throw new RequestError(
          'reference_mismatch',
          `rate deck ${deckId} is a ${String(deck.deck_type)} deck; a ${kind} trunk needs a ${kind} deck`,
        );
      await store.assignRateDeck(kind, trunkId, deckId);
      changed(table);
      return json(200, { message: 'rate deck assigned' });
    });
    add('DELETE', path, async (request) => {
      const trunkId = pathId(request, 'id');
      await mustExist(store, trunks.table, trunkId, trunks.noun);
      if (!(await store.unassignRateDeck(kind, trunkId)))
        throw new RequestError('not_found', `${trunks.noun} ${trunkId} has no rate deck assigned`);
      changed(table);
      return NO_CONTENT;
    });
  }

  add('GET', '/api/rate-decks/{id}/allowlist', async (request) => {
    const deckId = pathId(request, 'id');
    await mustExist(store, RATE_DECKS.table, deckId, RATE_DECKS.noun);
    return json(200, (await store.list('rate_deck_carrier_allowlist', { where: { rate_deck_id: deckId }, limit: null, offset: 0 })).rows);
  });
  add('POST', '/api/rate-decks/{id}/allowlist', async (request) => {
    const deckId = pathId(request, 'id');
    await mustExist(store, RATE_DECKS.table, deckId, RATE_DECKS.noun);
    const carrierId = storeValue(
      'carrier_trunk_id',
      { kind: 'integer', min: 1 },
      readBody(request).carrier_trunk_id ?? required('carrier_trunk_id'),
    ) as number;
    if ((await store.get(CARRIER_TRUNKS.table, carrierId)) === null)
      throw new RequestError('unknown_reference', `carrier_trunk_id ${carrierId} does not exist`);
    const created = await store.insert('rate_deck_carrier_allowlist', {
      rate_deck_id: deckId,
      carrier_trunk_id: carrierId,
      created_at: new Date().toISOString(),
    });
    changed('rate_deck_carrier_allowlist');
    return json(201, created);
  });
  add('DELETE', '/api/rate-decks/{id}/allowlist/{carrier_trunk_id}', async (request) => {
    const deckId = pathId(request, 'id');
    const carrierId = pathId(request, 'carrier_trunk_id');
    const { rows } = await store.list('rate_deck_carrier_allowlist', {
      where: { rate_deck_id: deckId, carrier_trunk_id: carrierId },
      limit: 1,
      offset: 0,
    });
    if (rows.length === 0) throw new RequestError('not_found', `carrier trunk ${carrierId} is not on rate deck ${deckId}'s allowlist`);
    await store.remove('rate_deck_carrier_allowlist', rows[0].id as number);
    changed('rate_deck_carrier_allowlist');
    return NO_CONTENT;
  });

  add('POST', '/api/block-rules/{id}/toggle', async (request) => {
    const id = pathId(request, 'id');
    const rule = await mustExist(store, BLOCK_RULES.table, id, BLOCK_RULES.noun);
    const body = request.body.byteLength === 0 ? {} : readBody(request);
    const isActive =
      body.is_active === undefined ? rule.is_active !== 1 : (storeValue('is_active', { kind: 'boolean' }, body.is_active) as number) === 1;
    await store.update(BLOCK_RULES.table, id, { is_active: isActive ? 1 : 0, updated_at: new Date().toISOString() });
    changed(BLOCK_RULES.table);
    return json(200, { id, is_active: isActive, message: isActive ? 'block rule activated' : 'block rule deactivated' });
  });
  // "Rebuild cache" here means: rebuild the snapshot and send it to every node.
  add('POST', '/api/block-rules/rebuild-cache', async () => {
    const report = await context.syncJob.run();
    const { rows } = await store.list(BLOCK_RULES.table, { where: { is_active: 1 }, limit: null, offset: 0 });
    return json(200, {
      message: 'block rules redistributed',
      count: rows.length,
      snapshot_version: report.snapshot_version,
      sidecar_results: report.sidecar_results,
    });
  });

  add('GET', '/api/exchange-rates/current', async (request) => {
    const params = new URLSearchParams(request.query);
    const from = storeValue('from_currency', { kind: 'currency' }, params.get('from_currency') ?? required('from_currency'));
    const to = storeValue('to_currency', { kind: 'currency' }, params.get('to_currency') ?? required('to_currency'));
    const { rows } = await store.list(EXCHANGE_RATES.table, {
      where: { from_currency: from as string, to_currency: to as string },
      limit: null,
      offset: 0,
    });
    const now = new Date().toISOString();
    const current = rows
      .filter((row) => (row.effective_at as string) <= now)
      .sort((a, b) => ((a.effective_at as string) < (b.effective_at as string) ? 1 : -1))
      .at(0);
    if (current === undefined) throw new RequestError('not_found', `no exchange rate in force for ${String(from)} to ${String(to)}`);
    return json(200, current);
  });

  // force=1: every sidecar takes this snapshot even if it serves a newer version (one put to it directly).
  const sync: Route = adminRoute('POST', '/api/opensips/routing/sync', context.maxBodyBytes, async (request) =>
    json(200, await context.syncJob.run({ force: queryFlag(parseQuery(request.query, ['force']), 'force') })),
  );
  routes.push({ ...sync, readsQuery: true });

  return routes;
}
