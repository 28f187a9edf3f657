import { refusalFields, type RefusalCode } from '../../core/errors/catalogue.js';
import type { DecisionEngine } from '../engine/engine.js';
import { blockingNumbers, isRoutableDnis, normalizeAni, normalizeNumber } from '../../core/numbers/normalize.js';
import { knownNode, sellDeckOf, type KnownDnisNode, type KnownSellDeck } from '../../core/lcr/lcr.js';

/**
 * POST /api/opensips/call/route, validated. `dnisNode`/`dnisRates`: only from call/decide, what its auth step knew
 * of the number (KnownDnisNode). `sellDeckId`: a retail call's product's deck (the request's
 * `customer_rate_deck_id`), whose allowlist and margin rules route it; its index only from call/decide.
 */
export interface RouteRequest extends KnownDnisNode, KnownSellDeck {
  customer_trunk_id: number;
  /** The DNIS call/auth returned: normalised, tech prefix already stripped (it is not stripped again). */
  dnis: string;
  /** The caller's number: call/auth's, or as the caller sent it when that is '' (carrier ANI rules read its digits). */
  ani: string | null;
  attempt: number;
  previous_carrier_trunk_id: number | null;
  previous_gateway_id: number | null;
  previous_failure_code: number | null;
  tried_carrier_trunk_ids: readonly number[];
  tried_gateway_ids: readonly number[];
}

export interface RouteAllowed {
  allowed: true;
  customer_trunk_id: number;
  carrier_trunk_id: number;
  carrier_gateway_id: number;
  destination_uri: string;
  outbound_dnis: string;
  cps_limit: number;
  port_limit: number;
  per_minute_rate_limit: number;
  sip_trusted: boolean;
  rtpengine_enabled: boolean;
}

export interface RouteRejected {
  allowed: false;
  customer_trunk_id: number;
  reject_code: number;
  reject_reason: string;
  reason_code: RefusalCode;
}

export type RouteDecision = RouteAllowed | RouteRejected;

const NO_IDS: readonly number[] = Object.freeze([]);

/**
 * A call's first carrier: nothing tried or failed yet (what the script sends call/route for attempt 1). The rest:
 * what call/auth knew of a retail call's number and sell deck (call/decide's firstAttempt), absent for another call.
 * Every request made here has every field, in one literal: a retail call's five added to it one by one cost
 * transitions and an out-of-object property store on every call, and gave route a second shape to read.
 */
export function firstAttemptRequest(
  customerTrunkId: number,
  dnis: string,
  ani: string | null,
  dnisNode?: number,
  dnisRates?: KnownDnisNode['dnisRates'],
  sellDeckId?: number,
  sellDeck?: number,
  sellDeckRates?: KnownSellDeck['sellDeckRates'],
): RouteRequest {
  return {
    customer_trunk_id: customerTrunkId,
    dnis,
    ani,
    attempt: 1,
    previous_carrier_trunk_id: null,
    previous_gateway_id: null,
    previous_failure_code: null,
    tried_carrier_trunk_ids: NO_IDS,
    tried_gateway_ids: NO_IDS,
    dnisNode,
    dnisRates,
    sellDeckId,
    sellDeck,
    sellDeckRates,
  };
}

/** Outcome label for metrics and logs. */
export type RouteOutcome = 'routed' | 'no_route' | 'unknown_trunk' | 'trunk_not_active' | 'invalid_dnis';

/** A refused route (a function, not a closure made on every call: most calls are routed). */
function rejected(request: RouteRequest, code: RefusalCode, outcome: RouteOutcome): { decision: RouteDecision; outcome: RouteOutcome } {
  return { decision: { allowed: false, customer_trunk_id: request.customer_trunk_id, ...refusalFields(code) }, outcome };
}

export function routeCall(engine: DecisionEngine, request: RouteRequest, now: number): { decision: RouteDecision; outcome: RouteOutcome } {
  const trunkIndex = engine.customerTrunkIndex(request.customer_trunk_id);
  if (trunkIndex < 0) return rejected(request, 'unknown_customer_trunk', 'unknown_trunk');
  const trunk = engine.snapshot.customerTrunks[trunkIndex];
  if (!trunk.active) return rejected(request, 'customer_trunk_not_active', 'trunk_not_active');
  const dnis = normalizeNumber(request.dnis);
  if (dnis === null || !isRoutableDnis(dnis)) return rejected(request, 'invalid_dnis', 'invalid_dnis');
  const ani = normalizeAni(request.ani);

  const carrierIndex = engine.lcr.cheapest({
    trunk: trunkIndex,
    sellDeck: sellDeckOf(request, engine.snapshot, trunk.sellDeck),
    dnis,
    dnisNode: knownNode(request, engine.snapshot.rates),
    ani,
    callerReadings: ani === '' ? blockingNumbers(request.ani) : undefined,
    triedCarrierIds: request.tried_carrier_trunk_ids,
    triedGatewayIds: request.tried_gateway_ids,
    now,
  });
  if (carrierIndex >= 0) {
    const carrier = engine.snapshot.carriers[carrierIndex];
    // Non-null: the carrier was only eligible because it has an untried active gateway.
    const gateway = engine.gateways.select(carrierIndex, carrier, request.tried_gateway_ids)!;
    return {
      decision: {
        allowed: true,
        customer_trunk_id: trunk.id,
        carrier_trunk_id: carrier.id,
        carrier_gateway_id: gateway.id,
        destination_uri: `sip:${dnis}@${gateway.hostPort}`,
        outbound_dnis: dnis,
        cps_limit: carrier.cpsLimit,
        port_limit: carrier.portLimit,
        per_minute_rate_limit: carrier.perMinuteRateLimit,
        sip_trusted: carrier.sipTrusted,
        rtpengine_enabled: carrier.rtpengineEnabled || trunk.rtpengineEnabled,
      },
      outcome: 'routed',
    };
  }
  return rejected(request, 'no_route', 'no_route');
}
