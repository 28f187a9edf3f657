import { mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildRoutes } from './app.js';
import { loadConfig } from './config.js';
import { startServer } from './http/server.js';
import { CallCounters } from './limits/call-counters.js';
import type { Logger } from 'pino';
import { createLogger } from './logger.js';
import { SidecarMetrics } from './metrics/metrics.js';
import { CentreLink } from './ledger/centre-link.js';
import { MoneyJournal } from './ledger/journal.js';
import { NodeLedger } from './ledger/node-ledger.js';
import { moneyRoutes } from './ledger/routes.js';
import { SnapshotService } from './snapshot/service.js';
import { watchSnapshotDirectory } from './snapshot/watch.js';

async function main(): Promise<void> {
  const config = loadConfig(process.argv.slice(2), process.env);
  const log = createLogger(config.logLevel, 'sidecar');
  mkdirSync(config.dataDir, { recursive: true });
  const metrics = new SidecarMetrics();
  const snapshots = new SnapshotService(join(config.dataDir, 'sidecar.db'), log, metrics);

  // Serve the last good snapshot first: routing works even if nothing else is up.
  const restored = await snapshots.restore();
  if (!restored) log.warn('no stored snapshot: answering 503 until one arrives');
  if (config.snapshotFile !== null) {
    const result = await snapshots.ingest(await readFile(config.snapshotFile), 'file');
    if (!result.ok && result.code !== 'STALE_VERSION') throw new Error(`snapshot ${config.snapshotFile} refused: ${result.reason}`);
  }

  const journal = new MoneyJournal(join(config.dataDir, 'money.db'), config.durability, log);
  const ledger = new NodeLedger(
    journal,
    {
      admissionSeconds: config.admissionSeconds,
      reservationGraceSeconds: 300,
      leaseChunkMicro: config.leaseChunkMicro,
      idleReturnMs: config.leaseIdleSeconds * 1000,
      offlinePostpaid: config.offlinePostpaid,
    },
    log,
  );
  const centre = new CentreLink(
    { url: config.controlUrl, node: config.nodeName, timeoutMs: config.centreTimeoutMs, intervalMs: 200, maxSettlements: 1000 },
    ledger,
    journal,
    metrics,
    log,
  );
  centre.start();
  const upkeep = startLedgerUpkeep(ledger, journal, metrics, log);

  const server = await startServer({
    host: config.host,
    port: config.port,
    routes: [
      ...buildRoutes({
        snapshots,
        metrics,
        counters: new CallCounters(),
        log,
        maxBodyBytes: config.maxBodyBytes,
        maxSnapshotBytes: config.maxSnapshotBytes,
        startedAt: Date.now(),
        accountHeadroom: (accountId) => ledger.headroomOf({ type: 'customer', id: accountId }, Date.now()),
      }),
      ...moneyRoutes({ snapshots, ledger, metrics, log, maxBodyBytes: config.maxBodyBytes }),
    ],
    observe: (route, status, seconds) => metrics.observeRequest(route, status, seconds),
    onHandlerError: (error, route) => log.error({ err: error, route }, 'handler failed'),
  });
  const watcher = config.watchDir === null ? null : watchSnapshotDirectory(config.watchDir, snapshots, log);
  log.info({ host: config.host, port: server.port, snapshot_version: snapshots.version, watch_dir: config.watchDir }, 'sidecar listening');

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    server.close();
    clearInterval(upkeep);
    centre.stop();
    void Promise.all([watcher?.close(), snapshots.close(), journal.close()])
      .finally(() => process.exit(0));
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

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
function startLedgerUpkeep(ledger: NodeLedger, journal: MoneyJournal, metrics: SidecarMetrics, log: Logger): NodeJS.Timeout {
  metrics.reservationsHeld.collectFrom(() => ledger.heldCount);
  metrics.cdrOutbox.collectFrom(() => ledger.outboxSize);
  metrics.centreAnswerAge.collectFrom(() => ledger.centreAnswerAge(Date.now()));
  metrics.leasesLapsed.collectFrom(() => (ledger.leasesLapsed ? 1 : 0));
  let tick = 0;
  const timer = setInterval(() => {
    const now = Date.now();
    if (++tick % LEASE_UPKEEP_SECONDS === 0) {
      const expired = ledger.expire(now);
      if (expired > 0) log.info({ expired }, 'reservations expired without a CDR');
      ledger.returnIdleLeases(now);
    }
    if (tick % PRUNE_EVERY_SECONDS === 0) void journal.write({ op: 'prune', reservationsBefore: now - RESERVATIONS_KEPT_MS, cdrsBefore: now - CDRS_KEPT_MS }).catch((error: unknown) => log.error({ err: error }, 'money journal prune failed'));
  }, 1000);
  timer.unref();
  return timer;
}

main().catch((error: unknown) => {
  process.stderr.write(`sidecar failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
