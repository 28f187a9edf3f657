import { affordable, costBoundMicro, type CallPrice } from '../../core/rating/cost-bound.js';

/**
 * call/admit with `estimated_cost`: what to reserve and how long the call may last. An admission that
 * holds an account to a limit always caps the call (issue 17, finding 6): uncapped, a call admitted on its
 * estimate ran ten hours and took a prepaid balance to -59.00.
 *
 * With the route's price known (a dialled number with a sell rate), the cap is the longest call whose
 * cost bound the reservation pays for, a billing-increment boundary, so the CDR can never cost more than
 * what was reserved. An estimate that does not buy even the first increment reserves the first increment
 * instead (a call cannot be shorter than it is billed), not a call that overruns from its first second.
 * Without a price the cap is the admission seconds every priced call is capped at.
 */
export interface EstimatedCostTerms {
  amountMicro: number;
  maxDurationSeconds: number;
}

export function estimatedCostTerms(price: CallPrice | null, estimatedMicro: number, admissionSeconds: number): EstimatedCostTerms {
  if (price === null) return { amountMicro: estimatedMicro, maxDurationSeconds: admissionSeconds };
  const fit =
    affordable(price, estimatedMicro, admissionSeconds) ?? affordable(price, costBoundMicro(price, price.initial), admissionSeconds);
  // Not reached with a well-formed price (the first increment's bound pays for itself); never leave the call uncapped.
  if (fit === null) return { amountMicro: estimatedMicro, maxDurationSeconds: admissionSeconds };
  // The contract reserves the estimate itself; more only when the estimate is short of the first increment.
  return { amountMicro: Math.max(estimatedMicro, fit.amountMicro), maxDurationSeconds: fit.maxDurationSeconds };
}
