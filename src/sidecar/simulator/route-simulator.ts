import { Decimal } from '../../core/money/decimal.js';
import { callerBlock, callerNumber } from '../auth/call-auth.js';
import type { DecisionEngine } from '../engine/engine.js';
import { refusalFields, type RefusalCode } from '../../core/errors/catalogue.js';
import { RequestError } from '../../core/http/errors.js';
import { candidateMarginOk, rateTypeOf } from '../routing/lcr-lookup.js';
import { costBoundMicro } from '../../core/rating/cost-bound.js';
import { priceCall } from '../admission/pricing.js';
import { formatMicro } from '../../core/money/micro.js';
import { formatNano } from '../../core/money/nano.js';
import { isRoutableDnis, normalizeNumber } from '../../core/numbers/normalize.js';
import { billableSeconds, convertMoney, rateCall } from '../../core/rating/rating.js';
import type { Currency, RateType } from '../../core/snapshot/schema.js';
import type { LivePorts } from '../limits/live-ports.js';

/**
 * POST /api/admin/route-simulator: every check the live path makes, each with
 * pass/fail, and every LCR candidate with retail and wholesale cost for the
 * given duration. Read-only: no reservation, no round-robin advance, no
 * counters.
 */
export interface RouteSimulationRequest {
  customer_account_id: number | null;
  customer_trunk_id: number;
  ani: string;
  dnis: string;
  duration_seconds: number;
}

interface Check {
  name: string;
  passed: boolean;
  reject_code: number | null;
  reject_reason: string | null;
  reason_code: RefusalCode | null;
}

interface SimulatedCarrier {
  carrier_trunk_id: number;
  carrier_name: string;
  allowed: boolean;
  blocked: boolean;
  block_rule_id: number | null;
  carrier_gateway_id: number | null;
  destination_uri: string | null;
  outbound_dnis: string | null;
  customer_currency: Currency;
  customer_rate: string;
  customer_rate_type: RateType;
  retail_cost: string;
  wholesale_rate?: string;
  wholesale_rate_type?: RateType;
  wholesale_currency: Currency;
  wholesale_cost?: string;
  converted_wholesale_rate?: string;
  converted_wholesale_cost?: string;
  margin_amount?: string;
  margin_ok: boolean;
  excluded_reason: string | null;
  reject_code: number | null;
}

const UNKNOWN = '';
const UNPRICED_FIELDS = [
  'wholesale_rate',
  'wholesale_rate_type',
  'wholesale_cost',
  'converted_wholesale_rate',
  'converted_wholesale_cost',
  'margin_amount',
] as const satisfies readonly (keyof SimulatedCarrier)[];

/**
 * `headroomMicro`: the account's headroom as admission sees it (NaN when unknown); `ports`: the node's live
 * calls per trunk, to say whether call/auth would refuse the trunk as full now.
 */
export function simulateRoute(
  engine: DecisionEngine,
  request: RouteSimulationRequest,
  now: number,
  headroomMicro: number,
  ports: LivePorts,
) {
  const { snapshot } = engine;
  const trunkIndex = engine.customerTrunkIndex(request.customer_trunk_id);
  if (trunkIndex < 0) throw new RequestError('unknown_reference', `customer_trunk_id ${request.customer_trunk_id} does not exist`);
  const trunk = snapshot.customerTrunks[trunkIndex];
  if (request.customer_account_id !== null && request.customer_account_id !== trunk.accountId) {
    throw new RequestError(
      'reference_mismatch',
      `customer trunk ${trunk.id} does not belong to customer account ${request.customer_account_id}`,
    );
  }
  const checks: Check[] = [];
  // A failed check answers as the live path would refuse the call: the catalogue's SIP code and reason.
  const check = (name: string, passed: boolean, code: RefusalCode, sip?: number): boolean => {
    checks.push(
      passed ? { name, passed, reject_code: null, reject_reason: null, reason_code: null } : { name, passed, ...refusalFields(code, sip) },
    );
    return passed;
  };

  check('customer_account_active', trunk.accountStatus === 'active', 'customer_account_not_active');
  check('customer_trunk_active', trunk.status === 'active', 'customer_trunk_not_active');
  const dialled = normalizeNumber(request.dnis) ?? '';
  const dnis = trunk.techPrefix !== '' && dialled.startsWith(trunk.techPrefix) ? dialled.slice(trunk.techPrefix.length) : dialled;
  const dnisValid = check('dnis_valid', isRoutableDnis(dnis), 'invalid_dnis');
  const ani = callerNumber(trunk, { ani: request.ani, pai: null, ppi: null, rpid: null });
  const block = dnisValid ? callerBlock(snapshot.blockRules, trunkIndex, ani, request, dnis) : null;
  check('block_rules', block === null, block?.number === 'ani' ? 'ani_blocked' : 'dnis_blocked', block?.sipCode);
  check('ports', !ports.full(trunk.id, trunk.portLimit), 'port_limit_reached');
  check('rate_deck_assigned', trunk.sellDeck >= 0, 'no_rate_deck');

  const lcr = dnisValid ? engine.lcr.evaluate({ trunk: trunkIndex, dnis, ani, triedCarrierIds: [], triedGatewayIds: [], now }) : null;
  const sellRow = lcr?.sellRow ?? -1;
  check('customer_rate', sellRow >= 0, 'no_rate');
  // The figure admission would reserve for this duration, against the headroom admission would see.
  const account = snapshot.accounts.get(trunk.accountId)!;
  const priced = dnisValid ? priceCall(engine, trunk, account.currency, dnis, now) : null;
  const neededMicro = priced?.ok === true ? costBoundMicro(priced.price, billableSeconds(request.duration_seconds, priced.price)) : NaN;
  const admissionAllowed = !account.enforcesHeadroom || neededMicro <= headroomMicro;
  check('admission', admissionAllowed, priced === null ? 'invalid_dnis' : priced.ok ? 'insufficient_balance' : priced.reason);

  const customerCurrency = trunk.sellDeck >= 0 ? snapshot.decks[trunk.sellDeck].currency : trunk.currency;
  const rates = snapshot.rates;
  const customerRate = sellRow >= 0 ? formatNano(rates.rateNano[sellRow]) : UNKNOWN;
  const customerRateType = sellRow >= 0 ? rateTypeOf(engine, sellRow) : 'per_minute';
  const retailCost =
    sellRow >= 0
      ? rateCall({
          rate: customerRate,
          rateType: customerRateType,
          durationSeconds: request.duration_seconds,
          increments: {
            initial: rates.incrementInitial[sellRow] || trunk.incrementInitial,
            step: rates.incrementStep[sellRow] || trunk.incrementStep,
          },
          precision: trunk.decimalPrecision,
          rounding: trunk.roundingDirection,
        })
      : UNKNOWN;

  const carriers: SimulatedCarrier[] = (lcr?.candidates ?? []).map((candidate) => {
    const carrier = snapshot.carriers[candidate.carrier];
    const row = candidate.costRow;
    const allowed = candidate.status === 'ok';
    const gateway = allowed ? engine.gateways.select(candidate.carrier, carrier, [], true) : null;
    let wholesaleCost: string | null = null;
    let converted: string | null = null;
    let convertedCost: string | null = null;
    if (row >= 0) {
      const rate = formatNano(rates.rateNano[row]);
      wholesaleCost = rateCall({
        rate,
        rateType: rateTypeOf(engine, row),
        durationSeconds: request.duration_seconds,
        increments: {
          initial: rates.incrementInitial[row] || carrier.incrementInitial,
          step: rates.incrementStep[row] || carrier.incrementStep,
        },
        precision: carrier.decimalPrecision,
        rounding: carrier.roundingDirection,
      });
      if (!Number.isNaN(candidate.costNano)) {
        const fx = candidate.exchangeRate === null ? '1' : formatNano(candidate.exchangeRate.rateNano);
        converted = formatNano(candidate.costNano);
        convertedCost = convertMoney(wholesaleCost, fx, false, trunk.decimalPrecision, trunk.roundingDirection);
      }
    }
    const view: SimulatedCarrier = {
      carrier_trunk_id: carrier.id,
      carrier_name: carrier.name,
      allowed,
      blocked: candidate.status === 'blocked',
      block_rule_id: candidate.blockRuleId,
      carrier_gateway_id: gateway?.id ?? null,
      destination_uri: gateway === null ? null : `sip:${dnis}@${gateway.hostPort}`,
      outbound_dnis: gateway === null ? null : dnis,
      customer_currency: customerCurrency,
      customer_rate: customerRate,
      customer_rate_type: customerRateType,
      retail_cost: retailCost,
      wholesale_rate: row >= 0 ? formatNano(candidate.originalCostNano) : undefined,
      wholesale_rate_type: row >= 0 ? rateTypeOf(engine, row) : undefined,
      wholesale_currency: carrier.costDeck >= 0 ? snapshot.decks[carrier.costDeck].currency : carrier.currency,
      wholesale_cost: wholesaleCost ?? undefined,
      converted_wholesale_rate: converted ?? undefined,
      converted_wholesale_cost: convertedCost ?? undefined,
      // Both operands carry the trunk's precision, so the difference is exact at that precision.
      margin_amount:
        convertedCost === null || retailCost === UNKNOWN
          ? undefined
          : new Decimal(retailCost).minus(convertedCost).toFixed(trunk.decimalPrecision),
      margin_ok: lcr !== null && candidateMarginOk(lcr, candidate),
      excluded_reason: allowed ? null : candidate.status,
      reject_code: allowed ? null : 404,
    };
    // A carrier without a rate (or an exchange rate) has none of these figures: the schema types each as a
    // string, never null, so they are left out rather than sent as null (contract note 45).
    for (const key of UNPRICED_FIELDS) if (view[key] === undefined) delete view[key];
    return view;
  });
  const selected = carriers.find((carrier) => carrier.allowed && carrier.carrier_gateway_id !== null) ?? null;
  check('carrier_route', selected !== null, 'no_route');
  const failed = checks.find((entry) => !entry.passed) ?? null;
  return {
    allowed: failed === null,
    admission_allowed: admissionAllowed,
    customer_account_id: trunk.accountId,
    customer_trunk_id: trunk.id,
    ani: request.ani,
    dnis: request.dnis,
    normalized_ani: ani,
    normalized_dnis: dnis,
    duration_seconds: request.duration_seconds,
    customer_currency: customerCurrency,
    customer_rate: customerRate,
    customer_rate_type: customerRateType,
    retail_cost: retailCost,
    headroom: Number.isNaN(headroomMicro) ? '' : formatMicro(headroomMicro),
    selected_carrier_trunk_id: selected?.carrier_trunk_id ?? null,
    selected_gateway_id: selected?.carrier_gateway_id ?? null,
    no_match_reason: lcr?.noMatchReason ?? (dnisValid ? null : 'invalid_dnis'),
    reject_code: failed?.reject_code ?? null,
    reject_reason: failed?.reject_reason ?? null,
    reason_code: failed?.reason_code ?? null,
    checks,
    carriers,
  };
}
