import type { Logger } from 'pino';
import { formatMicro } from '../../core/money/micro.js';
import type { SidecarMetrics } from '../metrics/metrics.js';
import type { Overrun } from './ingest.js';

/**
 * A CDR billed beyond its reservation is never refused (the call happened), but an operator must see it:
 * a counter by kind, the uncovered amount per currency (integer micro-units: money is never a float here),
 * and a warning naming the call and the account. No number or caller in the log: the Call-ID finds the CDR.
 */
export function reportOverrun(metrics: SidecarMetrics, log: Logger, overrun: Overrun): void {
  metrics.cdrOverrunsByKind.of(overrun.kind).value++;
  metrics.cdrUncoveredByCurrency.of(overrun.currency).value += overrun.uncoveredMicro;
  log.warn(
    {
      sip_call_id: overrun.sipCallId,
      customer_account_id: overrun.accountId,
      kind: overrun.kind,
      uncovered: formatMicro(overrun.uncoveredMicro),
      currency: overrun.currency,
    },
    overrun.kind === 'unadmitted'
      ? 'CDR billed with no live reservation: the call was not admitted (or its reservation expired)'
      : 'CDR billed beyond its reservation: the call cost more than was reserved for it',
  );
}
