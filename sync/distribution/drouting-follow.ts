import type { Logger } from 'pino';
import type { LiveTable } from '../../src/core/snapshot/delta.js';
import type { SyncReport } from './sync-job.js';

/**
 * drouting follows live changes (issue 18): OpenSIPS's drouting tables are the path calls take when a node's
 * sidecar does not answer, and a carrier suspended or a gateway added live must not wait for the next sync
 * there either. After a commit that changed a table the drouting rows are built from, one followLive run of
 * the sync job (sync-job.ts) rewrites and reloads every node's tables; further changes meanwhile are coalesced:
 * a run starts at most once per `seconds` (the first change after a quiet spell at once), so a node reloads
 * drouting at most once per that interval from following, and the run queues behind a sync as syncs do.
 * `seconds` 0: off (drouting changes with syncs only).
 */

/** What the drouting rows are built from among the live tables: all but block rules, which drouting cannot express. */
const DROUTING_READS: ReadonlySet<string> = new Set<LiveTable>([
  'customer_accounts',
  'customer_trunks',
  'trunk_ip_auth',
  'sip_registrations',
  'exchange_rates',
  'rate_deck_allowlist',
  'carrier_trunks',
  'carrier_gateways',
  'failover_rules',
  'lcr_config',
]);

export class DroutingFollow {
  private timer: NodeJS.Timeout | null = null;
  private lastStarted = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly sync: { run(options: { followLive: true }): Promise<SyncReport> },
    private readonly seconds: number,
    private readonly log: Logger,
  ) {}

  /** Live changes to `tables` committed. */
  committed(tables: ReadonlySet<string>): void {
    if (this.seconds <= 0 || this.timer !== null) return;
    if (![...tables].some((table) => DROUTING_READS.has(table))) return;
    const wait = Math.max(0, this.lastStarted + this.seconds * 1000 - Date.now());
    this.timer = setTimeout(() => this.follow(), wait);
  }

  close(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private follow(): void {
    this.timer = null;
    this.lastStarted = Date.now();
    this.sync.run({ followLive: true }).then(
      (report) => {
        const failed = report.reload_results.filter((result) => !result.success);
        if (failed.length > 0) this.log.warn({ failed }, 'drouting did not follow live changes on every node');
      },
      (error: unknown) => this.log.error({ err: error }, 'drouting did not follow live changes'),
    );
  }
}
