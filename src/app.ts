import type { Logger } from 'pino';
import { parseIPv4, parseIPv6 } from './auth/ip.js';
import { authorizeCall } from './auth/call-auth.js';
import { authorizeRegister } from './auth/register-auth.js';
import type { DecisionEngine } from './engine.js';
import { ADDRESS_TEXT, ATTEMPT, BodyReader, ID, NUMBER_TEXT, SIP_CODE, URI_TEXT, parseJsonObject } from './http/body.js';
import { encodeCallAuthDecision, encodeRouteDecision } from './http/encode.js';
import { RequestError, errorBody } from './http/errors.js';
import { guard } from './http/guard.js';
import type { IncomingRequest, OutgoingResponse, Route } from './http/server.js';
import { failoverAction } from './lcr/failover.js';
import { lcrLookup } from './lcr/lcr-lookup.js';
import { lookupRate } from './lcr/rate-lookup.js';
import { routeCall } from './lcr/route.js';
import { CallCounters, type TrunkType } from './limits/call-counters.js';
import type { SidecarMetrics } from './metrics/metrics.js';
import { MAX_NUMBER_DIGITS, normalizeAni, normalizeNumber } from './numbers/normalize.js';
import { simulateRoute } from './simulator/route-simulator.js';
import type { SnapshotService } from './snapshot/service.js';

/**
 * The sidecar's HTTP surface: each handler parses and validates, calls one
 * decision function, and writes the answer. Paths and fields are the switch
 * API's; deviations are listed in the README's contract notes.
 */
export interface AppContext {
  snapshots: SnapshotService;
  metrics: SidecarMetrics;
  counters: CallCounters;
  log: Logger;
  maxBodyBytes: number;
  maxSnapshotBytes: number;
  startedAt: number;
  /** An account's headroom as admission sees it, micro-units (read-only; see NodeLedger.headroomOf). */
  accountHeadroom: (accountId: number) => Promise<number>;
}

const SIP_METHODS = ['REGISTER', 'INVITE', 'OPTIONS'] as const;
const PER_MINUTE_LIMIT = { min: 0, max: 1_000_000_000 };
const CALL_DURATION = { min: 0, max: 86_400 };
const ipScratch = new Uint16Array(8);

function json(status: number, body: unknown): OutgoingResponse {
  return { status, body: JSON.stringify(body) };
}

function isIp(text: string): boolean {
  return parseIPv4(text) >= 0 || parseIPv6(text, ipScratch);
}

/** A number field for the debug endpoints: normalised like call/auth does, 400 when it is not a number. */
function numberField(name: string, value: string): string {
  const digits = normalizeNumber(value);
  if (digits === null || digits.length > MAX_NUMBER_DIGITS) {
    throw new RequestError(400, `${name} must be a telephone number of at most ${MAX_NUMBER_DIGITS} digits (optional leading +, visual separators)`);
  }
  return digits;
}

function parseQuery(query: string, allowed: readonly string[]): URLSearchParams {
  const params = new URLSearchParams(query);
  for (const key of params.keys()) {
    if (!allowed.includes(key)) throw new RequestError(400, `unknown query parameter ${key.slice(0, 64)}`);
  }
  return params;
}

function queryInteger(params: URLSearchParams, name: string): number | null {
  const text = params.get(name);
  if (text === null) return null;
  if (!/^[1-9][0-9]{0,15}$/.test(text)) throw new RequestError(400, `${name} must be a positive integer`);
  return Number(text);
}

export function buildRoutes(context: AppContext): Route[] {
  const { snapshots, metrics, counters } = context;
  const small = context.maxBodyBytes;

  const engineOrUnavailable = (): DecisionEngine => {
    const engine = snapshots.engine;
    if (engine === null) throw new RequestError(503, 'no routing snapshot loaded');
    return engine;
  };
  const decided = (endpoint: string, outcome: string): void => metrics.decided(endpoint, outcome);

  const post = (path: string, handler: (request: IncomingRequest) => OutgoingResponse): Route => ({
    method: 'POST',
    path,
    maxBodyBytes: small,
    handler: guard(handler),
  });
  const get = (path: string, handler: (request: IncomingRequest) => OutgoingResponse): Route => ({
    method: 'GET',
    path,
    maxBodyBytes: 0,
    handler: guard(handler),
  });

  return [
    post('/api/opensips/call/auth', (request) => {
      const reader = new BodyReader(parseJsonObject(request.body, request.contentType));
      const sourceIp = reader.requiredString('source_ip', ADDRESS_TEXT);
      if (!isIp(sourceIp)) throw new RequestError(400, 'source_ip must be an IPv4 or IPv6 address');
      const dnis = reader.string('dnis', NUMBER_TEXT) ?? null;
      const ruri = reader.string('ruri', URI_TEXT) ?? null;
      if ((dnis === null || dnis === '') && (ruri === null || ruri === '')) throw new RequestError(400, 'dnis is required');
      // Not used by the decision, but a wrong type there is still a malformed request.
      reader.string('from');
      reader.string('to');
      reader.string('privacy');
      const engine = engineOrUnavailable();
      const now = Date.now();
      const { decision, outcome } = authorizeCall(engine, {
        source_ip: sourceIp,
        call_id: reader.string('call_id') ?? null,
        ani: reader.string('ani', NUMBER_TEXT) ?? null,
        dnis: dnis === '' ? null : dnis,
        ruri,
        pai: reader.string('pai') ?? null,
        ppi: reader.string('ppi') ?? null,
        rpid: reader.string('rpid') ?? null,
        username: reader.string('username', NUMBER_TEXT) ?? null,
        domain: reader.string('domain', NUMBER_TEXT) ?? null,
      });
      decided('call_auth', outcome);
      if (decision.allowed) counters.recordAttempt('customer', decision.customer_trunk_id, now);
      return { status: 200, body: encodeCallAuthDecision(decision) };
    }),

    post('/api/opensips/register/auth', (request) => {
      const reader = new BodyReader(parseJsonObject(request.body, request.contentType));
      const method = reader.requiredString('method', ADDRESS_TEXT).toUpperCase();
      if (!(SIP_METHODS as readonly string[]).includes(method)) throw new RequestError(400, `method must be one of ${SIP_METHODS.join(', ')}`);
      const input = {
        source_ip: reader.string('source_ip', ADDRESS_TEXT) ?? null,
        username: reader.requiredString('username', NUMBER_TEXT),
        realm: reader.requiredString('realm', NUMBER_TEXT),
        auth_response: reader.requiredString('auth_response', { maxLength: 8192 }),
        method,
        uri: reader.string('uri', URI_TEXT) ?? null,
      };
      const engine = engineOrUnavailable();
      const { decision, outcome, detail } = authorizeRegister(engine, input);
      decided('register_auth', outcome);
      if (!decision.allowed) context.log.debug({ username: input.username, realm: input.realm, source_ip: input.source_ip, outcome, detail }, 'register refused');
      return json(200, decision);
    }),

    post('/api/opensips/call/route', (request) => {
      const reader = new BodyReader(parseJsonObject(request.body, request.contentType));
      const input = {
        customer_trunk_id: reader.requiredInteger('customer_trunk_id', ID),
        dnis: reader.requiredString('dnis', NUMBER_TEXT),
        ani: reader.string('ani', NUMBER_TEXT) ?? null,
        attempt: reader.integer('attempt', ATTEMPT) ?? 1,
        previous_carrier_trunk_id: reader.integer('previous_carrier_trunk_id', ID) ?? null,
        previous_gateway_id: reader.integer('previous_gateway_id', ID) ?? null,
        previous_failure_code: reader.integer('previous_failure_code', SIP_CODE) ?? null,
        tried_carrier_trunk_ids: reader.integerArray('tried_carrier_trunk_ids'),
        tried_gateway_ids: reader.integerArray('tried_gateway_ids'),
      };
      const engine = engineOrUnavailable();
      const now = Date.now();
      const { decision, outcome } = routeCall(engine, input, now);
      decided('call_route', outcome);
      if (decision.allowed) counters.recordAttempt('carrier', decision.carrier_trunk_id, now);
      return { status: 200, body: encodeRouteDecision(decision) };
    }),

    post('/api/opensips/call/failover', (request) => {
      const reader = new BodyReader(parseJsonObject(request.body, request.contentType));
      const input = {
        customer_trunk_id: reader.integer('customer_trunk_id', ID) ?? null,
        carrier_trunk_id: reader.requiredInteger('carrier_trunk_id', ID),
        failure_code: reader.requiredInteger('failure_code', SIP_CODE),
      };
      const answer = failoverAction(engineOrUnavailable(), input);
      decided('call_failover', answer.action);
      return json(200, answer);
    }),

    post('/api/lcr/lookup', (request) => {
      const reader = new BodyReader(parseJsonObject(request.body, request.contentType));
      const trunkId = reader.requiredInteger('customer_trunk_id', ID);
      const dnis = numberField('dnis', reader.requiredString('dnis', NUMBER_TEXT));
      const ani = normalizeAni(reader.string('ani', NUMBER_TEXT));
      const engine = engineOrUnavailable();
      const trunk = engine.customerTrunkIndex(trunkId);
      if (trunk < 0) throw new RequestError(404, `customer trunk ${trunkId} not found`);
      return json(200, lcrLookup(engine, trunk, { customer_trunk_id: trunkId, dnis, ani }, Date.now()));
    }),

    post('/api/rate-lookup', (request) => {
      const reader = new BodyReader(parseJsonObject(request.body, request.contentType));
      const rateDeckId = reader.requiredInteger('rate_deck_id', ID);
      const destination = numberField('destination', reader.requiredString('destination', NUMBER_TEXT));
      const result = lookupRate(engineOrUnavailable(), { rate_deck_id: rateDeckId, destination }, Date.now());
      if (!result.found) {
        const message = result.reason === 'unknown_rate_deck' ? `rate deck ${rateDeckId} not found` : `no rate in deck ${rateDeckId} matches ${destination}`;
        throw new RequestError(404, message);
      }
      return json(200, result.rate);
    }),

    {
      method: 'POST',
      path: '/api/admin/route-simulator',
      maxBodyBytes: small,
      handler: guard(async (request) => {
        const reader = new BodyReader(parseJsonObject(request.body, request.contentType), 422);
        const input = {
          customer_account_id: reader.integer('customer_account_id', ID) ?? null,
          customer_trunk_id: reader.requiredInteger('customer_trunk_id', ID),
          ani: reader.string('ani', NUMBER_TEXT) ?? '',
          dnis: reader.requiredString('dnis', NUMBER_TEXT),
          duration_seconds: reader.integer('duration_seconds', CALL_DURATION) ?? 60,
        };
        const engine = engineOrUnavailable();
        const trunk = engine.customerTrunkIndex(input.customer_trunk_id);
        const accountId = trunk < 0 ? null : engine.snapshot.customerTrunks[trunk].accountId;
        const headroomMicro = accountId === null ? NaN : await context.accountHeadroom(accountId);
        return json(200, simulateRoute(engine, input, Date.now(), headroomMicro));
      }),
    },

    post('/api/metrics/per-minute/check', (request) => {
      const reader = new BodyReader(parseJsonObject(request.body, request.contentType));
      const trunkId = reader.requiredInteger('trunk_id', ID);
      const limit = reader.requiredInteger('limit', PER_MINUTE_LIMIT);
      const result = counters.checkPerMinute(trunkId, limit, Date.now());
      decided('per_minute_check', result.allowed ? 'allowed' : 'exceeded');
      return json(result.allowed ? 200 : 429, result);
    }),

    get('/api/metrics/per-minute', (request) => {
      const params = parseQuery(request.query, ['trunk_id']);
      const trunkId = queryInteger(params, 'trunk_id');
      const now = Date.now();
      const timestamp = new Date(now).toISOString();
      const entry = (id: number) => ({ trunk_id: id, per_minute_current: counters.perMinuteCurrent(id, now), timestamp });
      return json(200, trunkId === null ? counters.perMinuteTrunks(now).map(entry) : entry(trunkId));
    }),

    get('/api/metrics/cps', (request) => {
      const params = parseQuery(request.query, ['trunk_id', 'trunk_type']);
      const trunkId = queryInteger(params, 'trunk_id');
      const typeText = params.get('trunk_type');
      if (typeText !== null && typeText !== 'customer' && typeText !== 'carrier') throw new RequestError(400, 'trunk_type must be customer or carrier');
      const now = Date.now();
      const timestamp = new Date(now).toISOString();
      // ports_current needs call-end events (the money path's CDRs); until then it reads 0.
      const entry = (type: TrunkType, id: number) => ({
        trunk_type: type,
        trunk_id: id,
        cps_current: counters.cpsCurrent(type, id, now),
        ports_current: 0,
        per_minute_current: counters.perMinuteCurrent(id, now),
        timestamp,
      });
      if (trunkId !== null) return json(200, entry(typeText ?? 'customer', trunkId));
      const types: TrunkType[] = typeText === null ? ['customer', 'carrier'] : [typeText];
      return json(200, types.flatMap((type) => counters.cpsTrunks(type).map((id) => entry(type, id))));
    }),

    get('/api/health', () => {
      const engine = snapshots.engine;
      const now = Date.now();
      return json(200, {
        status: engine === null ? 'no_snapshot' : 'ok',
        valkey: 'disabled',
        snapshot_version: engine?.snapshot.version ?? null,
        snapshot_created_at: engine?.snapshot.createdAt ?? null,
        snapshot_age_seconds: engine === null ? null : Math.max(0, Math.round((now - engine.snapshot.createdAtMs) / 1000)),
        uptime_seconds: Math.round((now - context.startedAt) / 1000),
      });
    }),

    get('/metrics', () => ({ status: 200, body: metrics.render(), contentType: 'text/plain; version=0.0.4; charset=utf-8' })),

    get('/api/snapshot', () => {
      const engine = engineOrUnavailable();
      const { version, createdAt, checksum, counts } = engine.snapshot;
      return json(200, { version, created_at: createdAt, checksum, counts });
    }),

    {
      method: 'PUT',
      path: '/api/snapshot',
      maxBodyBytes: context.maxSnapshotBytes,
      retainsBody: true,
      handler: async (request) => {
        if (request.body.byteLength === 0) return { status: 400, body: errorBody(400, 'snapshot body is empty') };
        const result = await snapshots.ingest(request.body, 'http');
        if (result.ok) return json(200, { version: result.version, compile_seconds: result.compileSeconds, swap_seconds: result.swapSeconds });
        const status = result.code === 'STALE_VERSION' ? 409 : result.code === 'STORE' ? 503 : 422;
        return { status, body: JSON.stringify({ error: result.reason, code: result.code, status, serving_version: snapshots.version }) };
      },
    },
  ];
}
