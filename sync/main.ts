/**
 * The central control plane: admin API over the config store, the ledger, routing sync to every node.
 *
 *   node dist/sync/main.js [--host 127.0.0.1] [--port 8080] [--data-dir ./data/control] [--lease-valid-seconds 900]
 *                          [--node-files-root /var/lib/opensips,…] [--node-hosts 10.1.0.0/16,…] …
 *   node dist/sync/main.js sync-run [--data-dir ...]     (one routing sync, for cron and scripts)
 *   node dist/sync/main.js migrate --store postgres://…  (creates or updates the schema, then exits)
 *
 * With --store postgres://…, several control planes may serve one database: all answer every API, the one
 * holding the sync lock runs the syncs (store/pg-leadership.ts).
 *
 * Options: sync/config.ts, documented in docs/operations.md.
 */
import { startServer } from '../src/core/http/server.js';
import { createLogger } from '../src/core/logger.js';
import { seedLocalhost } from './admin/access.js';
import { ADMIN_MAX_BODY_BYTES, buildControlPlaneRoutes } from './app.js';
import { loadControlConfig } from './config.js';
import { MetricsSampler } from './console/metrics-sampler.js';
import { SyncJob } from './distribution/sync-job.js';
import { DroutingFollow } from './distribution/drouting-follow.js';
import { LeaseRecalls } from './ledger/lease-recall.js';
import { startLeaseReclaim } from './ledger/lease-reclaim.js';
import { loadNodePolicy } from './nodes/policy.js';
import { RateDeckScheduler } from './rate-deck-updates/scheduler.js';
import { startPartnerApi } from './partner/listener.js';
import { ControlPlaneMetrics } from './metrics/control-plane-metrics.js';
import { adminApiOf } from './metrics/scrape-route.js';
import { PgSyncLock } from './store/pg-sync-lock.js';
import { askLeaderToSync, PgLeadership } from './store/pg-leadership.js';
import { openConfigStore, openServingStores } from './stores.js';
import { exitWithParent } from '../src/core/exit-with-parent.js';

/** How often a control plane that does not lead asks for the sync lock: the lead passes within this (and a connect) of its holder's death. */
const LEAD_RETRY_MS = 1000;

async function main(): Promise<void> {
  const config = loadControlConfig(process.argv.slice(2), process.env);
  const log = createLogger(config.logLevel, 'control-plane');
  const nodePolicy = loadNodePolicy(config.nodeFilesRoots, config.nodeHosts);
  if (config.command !== 'serve') {
    // migrate and sync-run need the configuration store alone, which both engines have.
    const handle = await openConfigStore(config.store);
    if (config.command === 'migrate') {
      process.stdout.write(`${JSON.stringify({ store: config.store.shown, schema_version: await handle.schemaVersion() })}\n`);
      await handle.close();
      return;
    }
    // On a store other control planes share, one sync at a time: another's running sync is left alone.
    const lock = config.store.engine === 'postgres' ? await PgSyncLock.tryTake(config.store.url) : null;
    if (config.store.engine === 'postgres' && lock === null) {
      await handle.close();
      throw new Error(`another control plane is running the sync on ${config.store.shown} (it holds the sync lock): nothing done`);
    }
    await seedLocalhost(handle.config);
    const syncJob = new SyncJob(handle.config, log, nodePolicy, { miTimeoutMs: config.miTimeoutMs, term: () => lock?.term ?? null });
    const report = await syncJob.run();
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    await syncJob.close();
    await lock?.release();
    await handle.close();
    process.exit(report.sidecar_results.every((result) => result.success) ? 0 : 1);
  }
  // A failed WAL fdatasync is final (store/wal-flush.ts): stop rather than acknowledge writes the disk may not hold.
  const stores = await openServingStores(
    config.store,
    config.deltaRetention,
    (error) => {
      log.fatal({ err: error }, 'the database could not be synced to disk: stopping');
      process.exit(70);
    },
    // Nothing committed is at risk (the WAL keeps it and grows); the next pass tries again.
    (reason) => log.warn({ reason }, 'WAL checkpoint failed'),
  );
  await seedLocalhost(stores.config);
  // On a store other control planes share, only the holder of the sync lock syncs and writes drouting; the
  // others ask it (askLeaderToSync), and a centre taking the lead syncs at once: what was asked while none led,
  // or what a holder killed mid-sync left half-sent, reaches the nodes.
  const leadership =
    config.store.engine === 'postgres'
      ? await PgLeadership.start(config.store.url, log, LEAD_RETRY_MS, (reason) => requestSync(`asked by another control plane: ${reason}`))
      : null;
  const leads = (): boolean => leadership?.isLeading() ?? true;
  // What an operator graphs and alerts on (GET /metrics on this listener: sync/metrics/).
  const metrics = new ControlPlaneMetrics(config.store.engine);
  metrics.syncLeader.collectFrom(() => (leads() ? 1 : 0));
  leadership?.onChange(() => metrics.leadershipChanges.inc());
  const syncJob = new SyncJob(stores.config, log, nodePolicy, {
    miTimeoutMs: config.miTimeoutMs,
    flushed: stores.flushed,
    leads,
    term: () => leadership?.term() ?? null,
    observe: (kind, seconds, report) => metrics.syncFinished(kind, seconds, report),
  });

  const leaseReclaim = startLeaseReclaim(stores.ledger, log, config.leaseValidSeconds, (count) => metrics.leasesReclaimed.inc({}, count));
  // What the scheduler and the rate-deck update routes change (a trunk suspended or reinstated, rates brought
  // or taken away), and a partner's delete_account that ended translations, reaches the sidecars by a sync of
  // its own, as an operator's sync would carry it; so does the snapshot a node behind the delta log needs
  // (sync/deltas/routes.ts).
  const requestSync = (reason: string): void => {
    if (!leads()) {
      askLeaderToSync(stores.pool!, reason).catch((error: unknown) =>
        log.error({ err: error, reason }, 'the leading control plane could not be asked for a sync'),
      );
      return;
    }
    syncJob.run().then(
      (report) => {
        const failed = report.sidecar_results.filter((result) => !result.success);
        if (failed.length === 0) log.info({ reason, version: report.snapshot_version }, 'background sync done');
        else log.warn({ reason, version: report.snapshot_version, failed }, 'background sync did not reach every sidecar');
      },
      (error: unknown) => log.error({ err: error, reason }, 'background sync failed'),
    );
  };
  // OpenSIPS's drouting tables follow live changes too, coalesced (they are the path calls take without a sidecar).
  const droutingFollow = new DroutingFollow(syncJob, config.droutingFollowSeconds, log);
  // On PostgreSQL every control plane hears every commit; the leader alone writes drouting.
  stores.deltas.onCommitted((tables) => {
    if (leads()) droutingFollow.committed(tables);
  });
  leadership?.onChange((leading) => {
    if (leading) requestSync('this control plane took the lead');
  });
  // Deltas past the retention's age go (the count is held as each is appended).
  const trimDeltas = (): void => {
    Promise.resolve()
      .then(() => stores.deltas.trimByAge())
      .catch((error: unknown) => log.error({ err: error }, 'old deltas could not be trimmed'));
  };
  trimDeltas();
  const deltaTrim = setInterval(trimDeltas, 60_000);
  deltaTrim.unref();
  // One set of lease recalls: the money rounds carry them to the nodes, delete_account marks them too.
  const recalls = new LeaseRecalls();
  const scheduler = new RateDeckScheduler(stores.deckUpdates, log, requestSync);
  // Before the server listens: updates that fell due while the control plane was down are activated first.
  await scheduler.start();
  const metricsSampler = new MetricsSampler(stores.config, nodePolicy, config.consoleSampleSeconds * 1000, log);
  metricsSampler.start();
  const server = await startServer({
    host: config.host,
    port: config.port,
    routes: buildControlPlaneRoutes({
      store: stores.config,
      ledger: stores.ledger,
      syncJob,
      log,
      maxBodyBytes: ADMIN_MAX_BODY_BYTES,
      leaseValidSeconds: config.leaseValidSeconds,
      nodeSilence: leaseReclaim.silence,
      nodePolicy,
      deckUpdates: stores.deckUpdates,
      scheduler,
      requestSync,
      metricsSampler,
      deltas: stores.deltas,
      recalls,
      flushed: stores.flushed,
      onChange: (table) => metrics.configWritten(table),
      metrics,
      metricsToken: config.metricsToken,
      adminHostnames: config.adminHostnames,
    }),
    remoteAddress: true,
    observe: metrics.observer(adminApiOf),
    bodyBudgetBytes: config.maxInflightBodyBytes,
    onHandlerError: (error, route) => log.error({ err: error, route }, 'handler failed'),
  });
  // The internet-facing partner API, on a listener of its own (never behind the admin allowlist's routes).
  const partnerServer =
    config.partner === null
      ? null
      : await startPartnerApi(config.partner, { ...stores, recalls }, log, config.maxInflightBodyBytes, {
          observe: metrics.observer(() => 'partner'),
          onOperation: (operation, outcome) => metrics.partnerOperation(operation, outcome),
          onThrottled: (limit) => metrics.partnerThrottled(limit),
        });
  log.info(
    {
      host: config.host,
      port: server.port,
      data_dir: config.dataDir,
      store: config.store.shown,
      schema_version: await stores.schemaVersion(),
      leads: leads(),
      node_files_roots: nodePolicy.files.roots,
      node_hosts: nodePolicy.hosts.text,
      admin_hostnames: config.adminHostnames,
      metrics: config.metricsToken === null ? 'auth_ips' : 'auth_ips or scrape token',
      partner_api: partnerServer === null ? 'off' : `${config.partner!.host}:${partnerServer.port}${config.partner!.stagePrefix}`,
    },
    'control plane listening',
  );
  const stop = (signal: string): void => {
    log.info({ signal, group_commit: stores.flushTiming() }, 'stopping');
    leaseReclaim.stop();
    clearInterval(deltaTrim);
    droutingFollow.close();
    scheduler.stop();
    metricsSampler.stop();
    metrics.process.stop();
    server.close();
    partnerServer?.close();
    void syncJob
      .close()
      .then(() => leadership?.stop())
      .then(() => stores.close())
      .finally(() => process.exit(0));
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  exitWithParent(stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`control plane failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
