import { BodyReader, ID, NUMBER_TEXT, SIP_CODE, parseJsonObject } from '../../core/http/body.js';
import { RequestError } from '../../core/http/errors.js';
import { json } from '../../core/http/respond.js';
import type { Route } from '../../core/http/server.js';
import { MAX_NUMBER_DIGITS, normalizeAni } from '../../core/numbers/normalize.js';
import { authorizeCall } from '../auth/call-auth.js';
import { authorizeRegister } from '../auth/register-auth.js';
import { failoverAction } from '../routing/failover.js';
import { lcrLookup } from '../routing/lcr-lookup.js';
import { lookupRate } from '../routing/rate-lookup.js';
import { routeCall } from '../routing/route.js';
import { simulateRoute } from '../simulator/route-simulator.js';
import { DecisionEngine } from '../engine/engine.js';
import type { SidecarContext } from './context.js';
import { encodeCallAuthDecision, encodeRouteDecision } from '../call/encode.js';
import { readCallAuth, readDigest, readRoute } from './call-requests.js';
import { numberField, servingEngine, timeField } from './fields.js';

/**
 * The per-call decisions OpenSIPS asks for (call/auth, register/auth, call/route, call/failover) and the
 * operator's read-only views of them (lcr/lookup, rate-lookup, the route simulator). Each handler parses
 * and validates, calls one decision function, and writes the answer.
 */
const CALL_DURATION = { min: 0, max: 86_400 };

export function decisionRoutes(context: SidecarContext): Route[] {
  const { snapshots, metrics, counters, post } = context;
  const decided = (endpoint: string, outcome: string): void => metrics.decided(endpoint, outcome);

  return [
    post('/api/opensips/call/auth', (request) => {
      const input = readCallAuth(new BodyReader(parseJsonObject(request.body, request.contentType)));
      const engine = servingEngine(snapshots);
      const now = Date.now();
      const { decision, outcome } = authorizeCall(engine, input, context.credit.ports, now);
      decided('call_auth', outcome);
      if (decision.allowed) counters.recordAttempt('customer', decision.customer_trunk_id, now);
      return { status: 200, body: encodeCallAuthDecision(decision) };
    }),

    post('/api/opensips/register/auth', (request) => {
      const reader = new BodyReader(parseJsonObject(request.body, request.contentType));
      const input = readDigest(reader);
      const { decision, outcome, detail } = authorizeRegister(servingEngine(snapshots), input, context.digestReplays, Date.now());
      decided('register_auth', outcome);
      if (!decision.allowed)
        context.log.debug(
          { username: input.username, realm: input.realm, source_ip: input.source_ip, outcome, detail },
          'register refused',
        );
      return json(200, decision);
    }),

    post('/api/opensips/call/route', (request) => {
      const reader = new BodyReader(parseJsonObject(request.body, request.contentType));
      const input = readRoute(reader);
      const engine = servingEngine(snapshots);
      const now = Date.now();
      const { decision, outcome } = routeCall(engine, input, now);
      decided('call_route', outcome);
      if (decision.allowed) {
        counters.recordAttempt('carrier', decision.carrier_trunk_id, now);
        metrics.routedTo(decision.carrier_trunk_id);
      }
      return { status: 200, body: encodeRouteDecision(decision) };
    }),

    post('/api/opensips/call/failover', (request) => {
      const reader = new BodyReader(parseJsonObject(request.body, request.contentType));
      const input = {
        customer_trunk_id: reader.integer('customer_trunk_id', ID) ?? null,
        carrier_trunk_id: reader.requiredInteger('carrier_trunk_id', ID),
        failure_code: reader.requiredInteger('failure_code', SIP_CODE),
      };
      const answer = failoverAction(servingEngine(snapshots), input);
      decided('call_failover', answer.action);
      metrics.failedOver(input.failure_code, answer.action);
      return json(200, answer);
    }),

    post('/api/lcr/lookup', (request) => {
      const reader = new BodyReader(parseJsonObject(request.body, request.contentType));
      const trunkId = reader.requiredInteger('customer_trunk_id', ID);
      const dnis = numberField(reader, 'dnis', MAX_NUMBER_DIGITS);
      const ani = normalizeAni(reader.string('ani', NUMBER_TEXT));
      const engine = servingEngine(snapshots);
      const trunk = engine.customerTrunkIndex(trunkId);
      if (trunk < 0) throw new RequestError('not_found', `customer trunk ${trunkId} not found`);
      return json(200, lcrLookup(engine, trunk, { customer_trunk_id: trunkId, dnis, ani }, Date.now()));
    }),

    post('/api/rate-lookup', (request) => {
      const reader = new BodyReader(parseJsonObject(request.body, request.contentType));
      const rateDeckId = reader.requiredInteger('rate_deck_id', ID);
      const destination = numberField(reader, 'destination', MAX_NUMBER_DIGITS);
      const result = lookupRate(servingEngine(snapshots), { rate_deck_id: rateDeckId, destination }, Date.now());
      if (!result.found) {
        if (result.reason === 'unknown_rate_deck') throw new RequestError('not_found', `rate deck ${rateDeckId} not found`);
        throw new RequestError('no_rate', `no rate in deck ${rateDeckId} matches ${destination}`);
      }
      return json(200, result.rate);
    }),

    post('/api/admin/route-simulator', async (request) => {
      const reader = new BodyReader(parseJsonObject(request.body, request.contentType), 'validation_failed');
      const input = {
        customer_account_id: reader.integer('customer_account_id', ID) ?? null,
        customer_trunk_id: reader.requiredInteger('customer_trunk_id', ID),
        ani: reader.string('ani', NUMBER_TEXT) ?? '',
        dnis: reader.requiredString('dnis', NUMBER_TEXT),
        duration_seconds: reader.integer('duration_seconds', CALL_DURATION) ?? 60,
      };
      // Beyond the contract (note 55): the moment to simulate, for a price change announced ahead; now by default.
      const at = timeField(reader, 'at', false);
      const now = Date.now();
      const serving = servingEngine(snapshots);
      // Another moment gets an LCR engine of its own: the live one's route cache holds one span of time, and
      // moving it to 2099 and back would cost the calls flowing through it.
      const engine = at === null ? serving : new DecisionEngine(serving.snapshot);
      const trunk = engine.customerTrunkIndex(input.customer_trunk_id);
      const accountId = trunk < 0 ? null : engine.snapshot.customerTrunks[trunk].accountId;
      // Headroom is the account's now, whatever moment the call is simulated at: credit is not forecast.
      const headroomMicro = accountId === null ? NaN : await context.credit.headroomOf({ type: 'customer', id: accountId }, now);
      return json(200, simulateRoute(engine, input, at ?? now, headroomMicro, context.credit.ports));
    }),
  ];
}
