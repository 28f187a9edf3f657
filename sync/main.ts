/**
 * The central control plane: admin API over the config store, routing sync to
 * every node's sidecar.
 *
 *   node dist/sync/main.js [--host 127.0.0.1] [--port 8080] [--data-dir ./data/control] [--lease-valid-seconds 900]
 *   node dist/sync/main.js sync-run [--data-dir ...]     (one routing sync, for cron and scripts)
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startServer } from '../src/http/server.js';
import { createLogger } from '../src/logger.js';
import { DEFAULT_LEASE_VALID_SECONDS } from '../src/ledger/protocol.js';
import { buildControlPlaneRoutes, seedLocalhost } from './app.js';
import { startLeaseReclaim } from './ledger/lease-reclaim.js';
import { SqliteConfigStore } from './store/config-store.js';
import { SyncJob } from './sync-job.js';

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      host: { type: 'string', default: process.env.CONTROL_HOST ?? '127.0.0.1' },
      port: { type: 'string', default: process.env.CONTROL_PORT ?? '8080' },
      'data-dir': { type: 'string', default: process.env.CONTROL_DATA_DIR ?? './data/control' },
      'log-level': { type: 'string', default: process.env.CONTROL_LOG_LEVEL ?? 'info' },
      'mi-timeout-ms': { type: 'string', default: process.env.CONTROL_MI_TIMEOUT_MS ?? '30000' },
      'lease-valid-seconds': { type: 'string', default: process.env.CONTROL_LEASE_VALID_SECONDS ?? String(DEFAULT_LEASE_VALID_SECONDS) },
    },
  });
  const log = createLogger(values['log-level'], 'control-plane');
  const store = new SqliteConfigStore(join(values['data-dir'], 'config.db'));
  await seedLocalhost(store);
  const syncJob = new SyncJob(store, log, { miTimeoutMs: Number(values['mi-timeout-ms']) });

  if (positionals[0] === 'sync-run') {
    const report = await syncJob.run();
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    await syncJob.close();
    await store.close();
    process.exit(report.sidecar_results.every((result) => result.success) ? 0 : 1);
  }

  const leaseValidSeconds = Number(values['lease-valid-seconds']);
  if (!Number.isFinite(leaseValidSeconds) || leaseValidSeconds < 1) throw new Error(`--lease-valid-seconds must be a number of seconds >= 1, not ${values['lease-valid-seconds']}`);
  const leaseReclaim = startLeaseReclaim(store, log, leaseValidSeconds);
  const server = await startServer({
    host: values.host,
    port: Number(values.port),
    routes: buildControlPlaneRoutes({ store, syncJob, log, maxBodyBytes: 1024 * 1024, leaseValidSeconds, nodeSilence: leaseReclaim.silence }),
    remoteAddress: true,
    onHandlerError: (error, route) => log.error({ err: error, route }, 'handler failed'),
  });
  log.info({ host: values.host, port: server.port, data_dir: values['data-dir'], schema_version: store.schemaVersion() }, 'control plane listening');
  const stop = (signal: string): void => {
    log.info({ signal }, 'stopping');
    leaseReclaim.stop();
    server.close();
    void Promise.all([syncJob.close(), store.close()]).finally(() => process.exit(0));
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}

main().catch((error: unknown) => {
  process.stderr.write(`control plane failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
