import type { Logger } from 'pino';
import { refusalFields, type RefusalCode } from '../../core/errors/catalogue.js';
import type { DecisionEngine } from '../engine/engine.js';
import type { SidecarMetrics } from '../metrics/metrics.js';
import { formatMicro } from '../../core/money/micro.js';
import { isRoutableDnis, normalizeNumber } from '../../core/numbers/normalize.js';
import { affordable, affordableBillable, type CallPrice } from '../../core/rating/cost-bound.js';
import type { CustomerAccount, CustomerTrunk } from '../../core/snapshot/model.js';
import { knownNode, sellDeckOf, type KnownDnisNode, type KnownSellDeck } from '../../core/lcr/lcr.js';
import { priceCall } from './pricing.js';
import { estimatedCostTerms, type EstimatedCostTerms } from './estimated-cost.js';
import type { AdmitOutcome, EntityMoney, NodeCredit, Plan } from '../credit/node-credit.js';
import type { EntityType } from '../../core/protocol/node-sync.js';

/**
 * The financial gate: POST /api/opensips/call/admit (price the call from the
 * trunk's sell rate, reserve what the account can afford up to the admission
 * duration, and say how long the call may last) and POST
 * /api/call-admit/check (reserve a given amount against an entity).
 * `dnisNode`/`dnisRates`: only from call/decide, what its auth step knew of the number (KnownDnisNode).
 * `sellDeckId`: a retail call's product's deck (call/auth's `customer_rate_deck_id`), which prices it instead of
 * the trunk's; its index only from call/decide (KnownSellDeck).
 */
export interface AdmitCallInput extends KnownDnisNode, KnownSellDeck {
  customer_trunk_id: number;
  dnis: string | null;
  call_id: string | null;
  /** Micro-units in the account's currency; null: priced from the sell rate. */
  estimatedCostMicro: number | null;
  /** OpenSIPS's dialog id ($DLG_did): with it the call can be ended over MI, so credit is reserved slice by slice. */
  dialogId: string | null;
  /**
   * A call through a partner product's access number (call/auth's `retail_account_id`): reserved against the
   * retail account (prepaid, in the product's currency, which is its trunk's), not the trunk's customer account.
   */
  retailAccountId?: number | null;
}

export interface AdmitContext {
  engine: DecisionEngine;
  credit: NodeCredit;
  metrics: SidecarMetrics;
  log: Logger;
}

export interface Answer {
  /** The JSON body. */
  body: string;
  outcome: string;
  /** Why the call was refused; null: admitted. */
  refusal: RefusalCode | null;
  /** The reservation the answer acknowledges; the answer goes out only once it is durable. null: nothing to wait for. */
  committed: Promise<void> | null;
}

let generatedCallIds = 0;
/** Reservations without a Call-ID still need a key; they end by release or expiry. */
function callIdOrGenerated(callId: string | null): string {
  return callId ?? `no-call-id-${process.pid}-${Date.now()}-${++generatedCallIds}`;
}

/** A refused admission: the catalogue's SIP code and reason; the metric's outcome is the code. */
function refusal(code: RefusalCode, headroom: string | null = null): Answer {
  return {
    body: JSON.stringify({ allowed: false, headroom, ...refusalFields(code), max_duration_seconds: null }),
    outcome: code,
    refusal: code,
    committed: null,
  };
}

const lastWarning = new Map<number, number>();

/** Reserve exactly the estimated cost (call-admit/check, and call/admit with `estimated_cost` for an account without a limit): no cap. */
function exactly(amountMicro: number): (availableMicro: number) => Plan | null {
  return (available) => (amountMicro <= available ? { amountMicro, maxDurationSeconds: null, slice: null } : null);
}

/** call/admit with `estimated_cost` for an account held to a limit: the estimate, and the cap it pays for (estimated-cost.ts). */
function capped(terms: EstimatedCostTerms): (availableMicro: number) => Plan | null {
  return (available) =>
    terms.amountMicro <= available ? { amountMicro: terms.amountMicro, maxDurationSeconds: terms.maxDurationSeconds, slice: null } : null;
}

/** The route's price for an estimated call, when its dialled number has one; null: the estimate is all there is to go on. */
function estimatePrice(
  context: AdmitContext,
  trunk: CustomerTrunk,
  currency: string,
  dnisText: string | null,
  now: number,
  dnisNode: number,
  sellDeck: number,
): CallPrice | null {
  const dnis = normalizeNumber(dnisText ?? '');
  if (dnis === null || !isRoutableDnis(dnis)) return null;
  const priced = priceCall(context.engine, trunk, currency, dnis, now, dnisNode, sellDeck);
  return priced.ok ? priced.price : null;
}

/** The longest call the lease affords, up to the admission cap, reserved at once. */
function wholeCall(price: CallPrice, capSeconds: number): (availableMicro: number) => Plan | null {
  return (available) => {
    const fit = affordable(price, available, capSeconds);
    return fit === null ? null : { amountMicro: fit.amountMicro, maxDurationSeconds: fit.maxDurationSeconds, slice: null };
  };
}

/**
 * The first slice reserved (credit/slices.ts); the dialog is capped at what the account affords in all
 * (its lease and the centre's headroom), which the slices then enforce as the balance moves.
 */
function inSlices(
  price: CallPrice,
  capSeconds: number,
  sliceSeconds: number,
  dialogId: string,
): (available: number, headroom: number) => Plan | null {
  return (available, headroom) => {
    const first = affordableBillable(price, available, Math.min(sliceSeconds, capSeconds));
    if (first === null) return null;
    const whole = affordable(price, Math.max(available, headroom), capSeconds);
    return {
      amountMicro: first.amountMicro,
      maxDurationSeconds: Math.max(whole?.maxDurationSeconds ?? 0, Math.min(first.billable, capSeconds)),
      slice: {
        paidBillable: first.billable,
        rateNano: price.rateNano,
        slackMicro: price.slackMicro,
        initial: price.initial,
        step: price.step,
        dialogId,
      },
    };
  };
}

/** Within the lease the answer is decided at once; a promise only when it waits for the centre. */
export function admitCall(context: AdmitContext, input: AdmitCallInput, now: number): Answer | Promise<Answer> {
  const { engine, credit } = context;
  const trunkIndex = engine.customerTrunkIndex(input.customer_trunk_id);
  if (trunkIndex < 0) return refusal('unknown_customer_trunk');
  const trunk = engine.snapshot.customerTrunks[trunkIndex];
  if (!trunk.active) return refusal('customer_trunk_not_active');
  const retail = input.retailAccountId ?? null;
  const account = retail === null ? engine.snapshot.accounts.get(trunk.accountId)! : retailTerms(retail, trunk);
  const sellDeck = sellDeckOf(input, engine.snapshot, trunk.sellDeck);

  let plan: (availableMicro: number, headroomMicro: number) => Plan | null;
  const estimated = input.estimatedCostMicro;
  if (estimated !== null) {
    // Held to a limit (prepaid, or postpaid with cutoff): the call is capped, or it could run past what was reserved.
    plan = account.enforcesHeadroom
      ? capped(
          estimatedCostTerms(
            estimatePrice(context, trunk, account.currency, input.dnis, now, knownNode(input, engine.snapshot.rates), sellDeck),
            estimated,
            credit.settings.admissionSeconds,
          ),
        )
      : exactly(estimated);
  } else {
    const dnis = normalizeNumber(input.dnis ?? '');
    if (dnis === null || !isRoutableDnis(dnis)) return refusal('invalid_dnis');
    const priced = priceCall(engine, trunk, account.currency, dnis, now, knownNode(input, engine.snapshot.rates), sellDeck);
    if (!priced.ok) return refusal(priced.reason);
    const sliceSeconds = credit.settings.sliceSeconds;
    // Slices need a way to end the call (the dialog, over an MI that answers) and a limit to enforce; a per-call
    // price is paid once.
    const sliced =
      sliceSeconds !== null && input.dialogId !== null && credit.slicesEnforceable && account.enforcesHeadroom && !priced.price.perCall;
    plan = sliced
      ? inSlices(priced.price, credit.settings.admissionSeconds, sliceSeconds, input.dialogId!)
      : wholeCall(priced.price, credit.settings.admissionSeconds);
  }

  const outcome = credit.admit({
    entity: { type: retail === null ? 'customer' : 'retail', id: account.id },
    callId: callIdOrGenerated(input.call_id),
    plan,
    enforce: account.enforcesHeadroom,
    admitWhenUnreachable: account.billingMode === 'postpaid' && credit.settings.offlinePostpaid === 'allow',
    answer: 'admit',
    port: { trunkId: trunk.id, limit: trunk.portLimit },
    now,
  });
  const answer = (settled: AdmitOutcome): Answer => {
    if (settled.kind === 'reserved') {
      const { entity } = settled;
      // Only against figures the centre has given: a postpaid account without cutoff asks for no lease, so learn them once.
      if (Number.isNaN(entity.centreHeadroomMicro)) credit.learnHeadroom(entity, now);
      else if (entity.headroomMicro < account.warningThresholdMicro) warnLowBalance(context, account.id, entity, now);
    }
    return answerOf(settled, (entity) =>
      refusal(settled.kind === 'refused' ? settled.reason : 'insufficient_balance', formatMicro(entity.headroomMicro)),
    );
  };
  return outcome instanceof Promise ? outcome.then(answer) : answer(outcome);
}

/** A retail account's terms for admission: prepaid, so held to its balance, in its product's (trunk's) currency. */
function retailTerms(id: number, trunk: CustomerTrunk): CustomerAccount {
  return {
    id,
    status: 'active',
    currency: trunk.currency,
    billingMode: 'prepaid',
    enforcesHeadroom: true,
    autoCutoffBehaviour: 'block_new',
    warningThresholdMicro: NaN,
  };
}

function answerOf(outcome: AdmitOutcome, refused: (entity: EntityMoney) => Answer): Answer {
  switch (outcome.kind) {
    case 'refused':
      return refused(outcome.entity);
    case 'replayed':
      return { body: outcome.answer, outcome: 'replayed', refusal: null, committed: null };
    case 'reserved':
      return {
        body: outcome.answer,
        outcome:
          outcome.waited === 'recall' ? 'admitted_after_recall' : outcome.waited === 'lease' ? 'admitted_after_lease_wait' : 'admitted',
        refusal: null,
        committed: outcome.committed,
      };
  }
}

function warnLowBalance(context: AdmitContext, accountId: number, entity: EntityMoney, now: number): void {
  context.metrics.balanceWarnings.inc();
  if (now - (lastWarning.get(accountId) ?? 0) < 60_000) return;
  lastWarning.set(accountId, now);
  context.log.warn({ customer_account_id: accountId, headroom: formatMicro(entity.headroomMicro) }, 'account below its warning threshold');
}

export interface CheckInput {
  entity_type: EntityType;
  entity_id: number;
  estimatedCostMicro: number;
  call_id: string | null;
}

/** POST /api/call-admit/check: reserve exactly the estimated cost, or refuse. null: no such entity. */
export function checkAndReserve(context: AdmitContext, input: CheckInput, now: number): Answer | Promise<Answer> | null {
  const { engine, credit } = context;
  let enforce = true;
  let admitWhenUnreachable = false;
  if (input.entity_type === 'customer') {
    const account = engine.snapshot.accounts.get(input.entity_id);
    if (account === undefined) return null;
    enforce = account.enforcesHeadroom;
    admitWhenUnreachable = account.billingMode === 'postpaid' && credit.settings.offlinePostpaid === 'allow';
  } else if (!engine.snapshot.carrierById.has(input.entity_id)) {
    return null;
  }
  const outcome = credit.admit({
    entity: { type: input.entity_type, id: input.entity_id },
    callId: callIdOrGenerated(input.call_id),
    plan: exactly(input.estimatedCostMicro),
    enforce,
    admitWhenUnreachable,
    answer: 'check',
    // Names an account or a carrier, not the trunk a call came in on: no port to take.
    port: null,
    now,
  });
  const answer = (settled: AdmitOutcome): Answer =>
    answerOf(settled, (entity) => {
      const code = settled.kind === 'refused' ? settled.reason : 'insufficient_balance';
      return {
        // The contract's shape for this endpoint: a message, no SIP fields.
        body: JSON.stringify({
          allowed: false,
          headroom: formatMicro(entity.headroomMicro),
          message: code === 'credit_unavailable' ? 'credit unavailable: control plane unreachable' : 'insufficient balance',
          reason_code: code,
        }),
        outcome: code,
        refusal: code,
        committed: null,
      };
    });
  return outcome instanceof Promise ? outcome.then(answer) : answer(outcome);
}
