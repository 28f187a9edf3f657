import type { Logger } from 'pino';
import { RequestError } from '../../core/http/errors.js';
import { guard } from '../../core/http/guard.js';
import type { IncomingRequest, OutgoingResponse, Route } from '../../core/http/server.js';
import type { NodeCredit } from '../credit/node-credit.js';
import { JournalWriteError } from '../journal/journal.js';
import type { CallCounters } from '../limits/call-counters.js';
import type { DigestReplayGuard } from '../auth/digest-replay.js';
import type { SidecarMetrics } from '../metrics/metrics.js';
import type { SnapshotService } from '../snapshot/service.js';

/** What the sidecar's endpoints work with, and how they are declared. */
export interface SidecarContext {
  snapshots: SnapshotService;
  credit: NodeCredit;
  metrics: SidecarMetrics;
  counters: CallCounters;
  /** Digest credentials register/auth and call/decide have taken: each is good once (auth/digest-replay.ts). */
  digestReplays: DigestReplayGuard;
  log: Logger;
  maxBodyBytes: number;
  maxSnapshotBytes: number;
  startedAt: number;
  /**
   * Checks a snapshot push's Authorization header (the centre's push token for this node's secret); absent:
   * no secret was given, and any push is taken (a warning at start).
   */
  admitsSnapshotPush?: (authorization: string | undefined) => boolean;
  /** Names GET /metrics answers under besides IP literals and localhost (`--metrics-hostnames`); absent: none. */
  metricsHostnames?: readonly string[];
  /** A POST endpoint with a JSON body of at most maxBodyBytes; refusals become error responses. */
  post: (path: string, handler: Handler) => Route;
  get: (path: string, handler: Handler) => Route;
}

type Handler = (request: IncomingRequest) => OutgoingResponse | Promise<OutgoingResponse>;

/** The journal could not make a write durable: nothing was admitted or taken, and OpenSIPS may retry. */
function journalUnavailable(error: unknown): unknown {
  return error instanceof JournalWriteError ? new RequestError('journal_unavailable') : error;
}

export function sidecarContext(parts: Omit<SidecarContext, 'post' | 'get'>): SidecarContext {
  return {
    ...parts,
    post: (path, handler) => ({ method: 'POST', path, maxBodyBytes: parts.maxBodyBytes, handler: guard(handler, journalUnavailable) }),
    get: (path, handler) => ({ method: 'GET', path, maxBodyBytes: 0, handler: guard(handler) }),
  };
}
