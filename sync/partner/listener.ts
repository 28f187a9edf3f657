import type { Logger } from 'pino';
import { json } from '../../src/core/http/respond.js';
import { startServer, type RequestObserver, type RunningServer } from '../../src/core/http/server.js';
import type { PartnerApiConfig } from './config.js';
import type { LeaseRecalls } from '../ledger/lease-recall.js';
import type { LedgerStore } from '../ledger/store.js';
import { PartnerAuthenticator } from './auth.js';
import { PartnerLimits, type ThrottleLimit } from './limits.js';
import { partnerRoutes } from './routes.js';
import type { PartnerStore } from './store.js';

/**
 * The partner API's own listener: its own route table, no admin route reachable through it, and the
 * admin API's allowlist not applied (partners are on the internet; their token is their credential).
 */
export async function startPartnerApi(
  config: PartnerApiConfig,
  stores: {
    partner: PartnerStore;
    ledger: LedgerStore;
    recalls: LeaseRecalls;
    flushed: () => Promise<void>;
  },
  log: Logger,
  bodyBudgetBytes: number,
  /** Told of its requests and operations (the metrics). It serves no /metrics: this listener faces the internet. */
  counting: {
    observe?: RequestObserver;
    onOperation?: (operation: string, outcome: string) => void;
    onThrottled?: (limit: ThrottleLimit) => void;
  } = {},
): Promise<RunningServer> {
  const partnerLog = log.child({ api: 'partner' });
  const server = await startServer({
    host: config.host,
    port: config.port,
    routes: [
      ...partnerRoutes({
        partner: stores.partner,
        ledger: stores.ledger,
        recalls: stores.recalls,
        auth: new PartnerAuthenticator(config),
        log: partnerLog,
        stagePrefix: config.stagePrefix,
        flushed: stores.flushed,
        onOperation: counting.onOperation,
        limits: new PartnerLimits(config.limits),
        onThrottled: counting.onThrottled,
      }),
      { method: 'GET', path: `${config.stagePrefix}/health`, maxBodyBytes: 0, handler: () => json(200, { status: 'ok' }) },
    ],
    bodyBudgetBytes,
    // The per-address limit on refused tokens keys on it (limits.ts).
    remoteAddress: true,
    observe: counting.observe,
    onHandlerError: (error, route) => partnerLog.error({ err: error, route }, 'partner handler failed'),
  });
  partnerLog.info(
    { host: config.host, port: server.port, stage_prefix: config.stagePrefix, issuer: config.issuer },
    'partner API listening',
  );
  startPruning(stores.partner, config.retentionHours, partnerLog);
  return server;
}

const HOUR_MS = 3_600_000;

/**
 * Kept answers and ended translations older than the retention go, at start and every hour after (the timer
 * does not hold the process up: it ends with the control plane).
 */
function startPruning(partner: PartnerStore, retentionHours: number, log: Logger): void {
  const prune = async (): Promise<void> => {
    const pruned = await partner.prune(new Date(Date.now() - retentionHours * HOUR_MS).toISOString());
    if (pruned.kept + pruned.translations > 0) log.info({ ...pruned, retention_hours: retentionHours }, 'partner records pruned');
  };
  // A prune that fails (the database away a moment) is tried again at the next hour.
  const pruneLogged = (): void => void prune().catch((error: unknown) => log.error({ err: error }, 'partner prune failed'));
  pruneLogged();
  setInterval(pruneLogged, HOUR_MS).unref();
}
