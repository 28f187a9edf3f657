import type { Logger } from 'pino';
import type { MoneyJournal } from '../journal/journal.js';
import type { SidecarMetrics } from '../metrics/metrics.js';
import type { NodeCredit } from './node-credit.js';

/**
 * What the journal keeps once it is done with it: finished reservations (a repeated Call-ID is answered from
 * memory, the newest 65,536, which start-up reads back) and settled CDRs (a resend within the hour gets its
 * first answer; after that it is rated again and the centre, which records a Call-ID once, ignores it). An
 * hour, because a node at 1,000 calls/s writes 3.6M of each an hour.
 */
const RESERVATIONS_KEPT_MS = 3_600_000;
const CDRS_KEPT_MS = 3_600_000;
const PRUNE_EVERY_SECONDS = 300;
const LEASE_UPKEEP_SECONDS = 5;

/** Every 5 s: expired reservations and idle leases; every 5 min: old journal rows (in the applier thread). */
export function startCreditUpkeep(credit: NodeCredit, journal: MoneyJournal, metrics: SidecarMetrics, log: Logger): NodeJS.Timeout {
  metrics.reservationsHeld.collectFrom(() => credit.heldCount);
  metrics.cdrOutbox.collectFrom(() => credit.outboxSize);
  metrics.centreAnswerAge.collectFrom(() => credit.centreAnswerAge(Date.now()));
  metrics.leasesLapsed.collectFrom(() => (credit.leasesLapsed ? 1 : 0));
  let tick = 0;
  const timer = setInterval(() => {
    const now = Date.now();
    if (++tick % LEASE_UPKEEP_SECONDS === 0) {
      const expired = credit.expire(now);
      if (expired > 0) log.info({ expired }, 'reservations expired without a CDR');
      credit.returnIdleLeases(now);
    }
    if (tick % PRUNE_EVERY_SECONDS === 0)
      void journal
        .write({ op: 'prune', reservationsBefore: now - RESERVATIONS_KEPT_MS, cdrsBefore: now - CDRS_KEPT_MS })
        .catch((error: unknown) => log.error({ err: error }, 'money journal prune failed'));
  }, 1000);
  timer.unref();
  return timer;
}
