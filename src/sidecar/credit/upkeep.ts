import type { Logger } from 'pino';
import type { MoneyJournal } from '../journal/journal.js';
import type { SidecarMetrics } from '../metrics/metrics.js';
import type { NodeCredit } from './node-credit.js';
import type { SliceKeeper } from './slices.js';

/**
 * What the journal keeps once it is done with it: finished reservations (a repeated Call-ID is answered from
 * memory, the newest 65,536, which start-up reads back) and settled CDRs (a resend within the hour gets its
 * first answer; after that it is rated again and the centre, which records a Call-ID once, ignores it). An
 * hour, because a node at 1,000 calls/s writes 3.6M of each an hour.
 */
const RESERVATIONS_KEPT_MS = 3_600_000;
const CDRS_KEPT_MS = 3_600_000;
/** Sliced calls are ended ahead of their paid time by less than a second: the reservations due are looked at this often. */
const TICK_MS = 250;
const PRUNE_EVERY_TICKS = 300_000 / TICK_MS;
const LEASE_UPKEEP_TICKS = 5_000 / TICK_MS;

/**
 * Every 250 ms: reservations due (sliced calls' next slices, whole calls past their expiry); every 5 s: idle
 * leases, and whether the MI answers (slices); every 5 min: old journal rows (in the applier thread).
 */
export function startCreditUpkeep(
  credit: NodeCredit,
  journal: MoneyJournal,
  slices: SliceKeeper | null,
  metrics: SidecarMetrics,
  log: Logger,
): NodeJS.Timeout {
  metrics.reservationsHeld.collectFrom(() => credit.heldCount);
  metrics.cdrOutbox.collectFrom(() => credit.outboxSize);
  metrics.centreAnswerAge.collectFrom(() => credit.centreAnswerAge(Date.now()));
  metrics.leasesHeld.collectFrom(() => credit.leaseCount);
  metrics.leasesLapsed.collectFrom(() => (credit.leasesLapsed ? 1 : 0));
  let tick = 0;
  const timer = setInterval(() => {
    const now = Date.now();
    const due = credit.expire(now);
    if (due.expired > 0) log.info({ expired: due.expired }, 'reservations expired without a CDR');
    if (due.slices.length > 0) slices?.act(due.slices);
    if (++tick % LEASE_UPKEEP_TICKS === 0) {
      credit.returnIdleLeases(now);
      slices?.probe();
    }
    if (tick % PRUNE_EVERY_TICKS === 0)
      void journal
        .write({ op: 'prune', reservationsBefore: now - RESERVATIONS_KEPT_MS, cdrsBefore: now - CDRS_KEPT_MS })
        .catch((error: unknown) => log.error({ err: error }, 'money journal prune failed'));
  }, TICK_MS);
  timer.unref();
  return timer;
}
