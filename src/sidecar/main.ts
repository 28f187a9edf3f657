/**
 * The sidecar: one per OpenSIPS node. Serves the last good snapshot first, then opens the money journal,
 * the node's credit and its link to the centre, then listens.
 *
 *   node dist/src/sidecar/main.js [--port 8090] [--data-dir ./data/sidecar] [--control-url http://centre:8080] …
 *
 * Options: src/sidecar/config.ts, documented in docs/operations.md.
 */
import { mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startServer } from '../core/http/server.js';
import { createLogger } from '../core/logger.js';
import { buildSidecarRoutes } from './app.js';
import { CentreCredential } from './centre/credential.js';
import { CentreLink } from './centre/link.js';
import { LongPollChannel } from './deltas/channel.js';
import { DeltaFollower } from './deltas/follower.js';
import { loadConfig, MAX_ROUND_CDRS } from './config.js';
import { NodeCredit, steadyEpochClock } from './credit/node-credit.js';
import { OpensipsSpool } from './cdr/spool.js';
import { SliceKeeper } from './credit/slices.js';
import { spoolHandlers } from './http/money-routes.js';
import { startCreditUpkeep } from './credit/upkeep.js';
import { MoneyJournal } from './journal/journal.js';
import { CallCounters } from './limits/call-counters.js';
import { DigestReplayGuard } from './auth/digest-replay.js';
import { SidecarMetrics } from './metrics/metrics.js';
import { SnapshotService } from './snapshot/service.js';
import { watchSnapshotDirectory } from './snapshot/watch.js';
import { exitWithParent } from '../core/exit-with-parent.js';

async function main(): Promise<void> {
  // Milliseconds from the process's start (performance's time origin) to the end of each start-up step, logged
  // with 'sidecar listening': where a restart's time goes (issue 18: a restarted node serves within 2 s).
  const startup: Record<string, number> = { modules_loaded: Math.round(performance.now()) };
  const config = loadConfig(process.argv.slice(2), process.env);
  const log = createLogger(config.logLevel, 'sidecar');
  mkdirSync(config.dataDir, { recursive: true });
  const metrics = new SidecarMetrics();
  const snapshots = new SnapshotService(join(config.dataDir, 'sidecar.db'), log, metrics, config.maxQueuedSnapshots);

  // Serve the last good snapshot first: routing works even if nothing else is up.
  const restored = await snapshots.restore();
  if (!restored) log.warn('no stored snapshot: answering 503 until one arrives');
  startup.snapshot_restored = Math.round(performance.now());
  if (config.snapshotFile !== null) {
    const result = await snapshots.ingest(await readFile(config.snapshotFile), 'file');
    if (!result.ok && result.code !== 'snapshot_stale_version')
      throw new Error(`snapshot ${config.snapshotFile} refused: ${result.reason}`);
  }

  const journal = new MoneyJournal(join(config.dataDir, 'money.db'), config.durability, log);
  const credit = new NodeCredit(
    journal,
    {
      admissionSeconds: config.admissionSeconds,
      reservationGraceSeconds: 300,
      leaseChunkMicro: config.leaseChunkMicro,
      idleReturnMs: config.leaseIdleSeconds * 1000,
      offlinePostpaid: config.offlinePostpaid,
      sliceSeconds: config.opensipsMi === null ? null : config.sliceSeconds,
      sliceEndMarginMs: config.sliceEndMarginMs,
      // Only with the live channel: the refresh a recall ends with comes over it.
      recallWaitMs: config.controlUrls === null ? 0 : config.recallWaitMs,
      admissionDeadlineMs: config.admissionDeadlineMs,
      steadyClock: steadyEpochClock(),
    },
    log,
  );
  startup.journal_opened = Math.round(performance.now());
  if (config.opensipsMi === null) log.info('no --opensips-mi: prepaid calls are reserved whole, not in slices (credit/slices.ts)');
  const slices = config.opensipsMi === null ? null : new SliceKeeper(credit, config.opensipsMi, metrics, log);
  const credential = config.centreSecret === null ? null : new CentreCredential(config.centreSecret);
  if (credential === null)
    log.warn(
      config.controlUrls === null
        ? 'no --centre-secret-file or CENTRE_SECRET: snapshot pushes are taken from anyone'
        : "no --centre-secret-file or CENTRE_SECRET: the control plane refuses this node's money rounds, and snapshot pushes are taken from anyone",
    );
  const centre = new CentreLink(
    {
      urls: config.controlUrls,
      node: config.nodeName,
      timeoutMs: config.centreTimeoutMs,
      intervalMs: 200,
      roundCdrs: config.roundCdrs,
      maxSettlements: MAX_ROUND_CDRS,
      credential,
    },
    credit,
    journal,
    metrics,
    log,
  );
  centre.start();
  // Live changes from the centre's delta log, on a connection of their own (issue 18), and the money signals
  // (recall, refresh) that ride the same answers.
  const follower =
    config.controlUrls === null
      ? null
      : new DeltaFollower(
          new LongPollChannel(
            config.controlUrls,
            config.nodeName,
            config.deltaWaitMs,
            config.centreTimeoutMs,
            credential === null ? null : () => credential.authorization(),
          ),
          snapshots,
          log,
          (signals) => {
            if (signals.recall.length > 0) metrics.moneySignals.inc({ kind: 'recall' }, signals.recall.length);
            if (signals.refresh.length > 0) metrics.moneySignals.inc({ kind: 'refresh' }, signals.refresh.length);
            credit.moneySignals(signals, Date.now());
          },
        );
  follower?.start();
  const upkeep = startCreditUpkeep(credit, journal, slices, metrics, log);

  const server = await startServer({
    host: config.host,
    port: config.port,
    routes: buildSidecarRoutes({
      snapshots,
      credit,
      metrics,
      counters: new CallCounters((trunkId) => snapshots.engine?.knowsTrunk(trunkId) === true),
      digestReplays: new DigestReplayGuard(),
      log,
      maxBodyBytes: config.maxBodyBytes,
      maxSnapshotBytes: config.maxSnapshotBytes,
      startedAt: Date.now(),
      metricsHostnames: config.metricsHostnames,
      ...(credential === null ? {} : { admitsSnapshotPush: (authorization: string | undefined) => credential.admitsPush(authorization) }),
    }),
    observe: (route, status, seconds) => metrics.observeRequest(route, status, seconds),
    bodyBudgetBytes: config.maxInflightBodyBytes,
    onHandlerError: (error, route) => log.error({ err: error, route }, 'handler failed'),
  });
  metrics.bodyBytesHeld.collectFrom(() => server.bodyBytesHeld);
  const watcher = config.watchDir === null ? null : watchSnapshotDirectory(config.watchDir, snapshots, log);
  // After the server is up: what OpenSIPS spooled while this sidecar was down goes through the same ingest.
  const spool =
    config.opensipsSpool === null
      ? null
      : new OpensipsSpool(config.opensipsSpool, spoolHandlers({ snapshots, credit, metrics, log }), config.maxBodyBytes, log, {
          // A snapshot or a live delta changes one of the two: a parked CDR is rated again after either.
          servingState: () => `${snapshots.version}:${snapshots.deltaSeq}`,
          holdsCdr: (callId) => credit.hasCdr(callId),
          parkDays: config.spoolParkDays,
        });
  if (spool !== null) {
    metrics.spoolParked.collectFrom(() => spool.parkedCount);
    credit.parkedCdr = (callId) => spool.holdsParked(callId);
  }
  spool?.start();
  startup.listening = Math.round(performance.now());
  log.info(
    { host: config.host, port: server.port, snapshot_version: snapshots.version, watch_dir: config.watchDir, startup_ms: startup },
    'sidecar listening',
  );

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    server.close();
    clearInterval(upkeep);
    metrics.process.stop();
    spool?.close();
    void Promise.all([centre.finish(2000), follower?.stop()])
      .then(() => Promise.all([watcher?.close(), snapshots.close(), journal.close()]))
      .finally(() => process.exit(0));
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  exitWithParent(stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`sidecar failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
