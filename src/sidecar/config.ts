import { hostname } from 'node:os';
import { LOG_LEVELS, OptionReader, type OptionTable } from '../core/config/options.js';
import { DEFAULT_BODY_BUDGET_BYTES } from '../core/http/body-budget.js';
import { parseHostnames } from '../core/http/host-names.js';
import { parseMiAddress, type MiAddress } from '../core/mi/client.js';
import { parseMicro } from '../core/money/micro.js';
import type { CentreSecretSource } from './centre/credential.js';
import { DEFAULT_SLICE_SECONDS, defaultEndMarginMs, renewLeadMs } from './credit/slices.js';
import type { Durability } from './journal/journal.js';

/** Sidecar settings: command-line flags, else SIDECAR_* environment variables, else defaults. */
export interface SidecarConfig {
  host: string;
  port: number;
  dataDir: string;
  /** Directory watched for *.msgpack snapshots; null disables watching. */
  watchDir: string | null;
  /** A snapshot file to ingest at start-up (fixtures, demo). */
  snapshotFile: string | null;
  logLevel: string;
  maxBodyBytes: number;
  maxSnapshotBytes: number;
  /** Bytes all request bodies being read may hold together (503 server_busy past it). */
  maxInflightBodyBytes: number;
  /** Snapshots that may wait for the compile worker behind the one compiling (503 snapshot_queue_full past it). */
  maxQueuedSnapshots: number;
  /** This node's hostname as registered at the control plane (opensips_nodes). */
  nodeName: string;
  /**
   * Control plane base URLs for credit leases, CDR settlement and live changes, in the order tried (several
   * control planes on one PostgreSQL store); null: none (prepaid calls are refused).
   */
  controlUrls: readonly string[] | null;
  durability: Durability;
  admissionSeconds: number;
  leaseChunkMicro: number;
  offlinePostpaid: 'allow' | 'deny';
  centreTimeoutMs: number;
  /** A money round goes as soon as this many CDRs have come since the last (0: only every 200 ms). */
  roundCdrs: number;
  leaseIdleSeconds: number;
  /** This node's OpenSIPS MI (to end calls whose credit ran out); null: none, so calls are reserved whole. */
  opensipsMi: MiAddress | null;
  sliceSeconds: number;
  /** How long before its paid time a sliced call that could not buy its next slice is ended, ms. */
  sliceEndMarginMs: number;
  /** The SQLite file the OpenSIPS script spools undelivered CDRs and releases into; null: none. */
  opensipsSpool: string | null;
  /** A spooled CDR still unrateable this many days after it was spooled is dropped (logged whole). */
  spoolParkDays: number;
  /** How long the centre may hold the node's ask for live changes (the delta channel's long poll). */
  deltaWaitMs: number;
  /** How long an admission may wait while the centre recalls other nodes' unused lease for it (0: not at all). */
  recallWaitMs: number;
  /** An admission still waiting on the centre after this long is refused and reserves nothing (credit/node-credit.ts). */
  admissionDeadlineMs: number;
  /** Where this node's secret with the centre comes from (a file, else CENTRE_SECRET); null: none given. */
  centreSecret: CentreSecretSource | null;
  /** Names GET /metrics answers under besides IP literals and localhost (src/core/http/host-names.ts: DNS rebinding). */
  metricsHostnames: string[];
}

/** The most CDRs one money round carries (CentreLinkOptions.maxSettlements); more wait for the next. */
export const MAX_ROUND_CDRS = 1000;
/**
 * CDRs that send a money round before its 200 ms interval: the interval's round at 1,000 calls/s, so a node at
 * or below that rate does not round more often, and above ~1,350 calls/s (where 200 come before the interval's
 * next background round is due: CentreLink.roundFull) each round stays near this size. On PostgreSQL at
 * 3 nodes × 2,000 calls/s (bench/money-rounds.ts, docs/performance-log.md 2026-12-07 "money rounds by size"),
 * rounds of 200 against the interval's 400: p50 about −40%, p99 lower in half the runs (the box's noise sets it),
 * the centre's and its server's CPU a CDR +25–35% (a round costs them ~1.5–2 ms whatever its size). 100 and 150
 * reached issue 21's p99 < 20 ms once each, at +80% / +40% CPU a CDR and more rounds at 1,000 calls/s: an
 * operator's choice.
 */
export const DEFAULT_ROUND_CDRS = 200;

/** Every option, as docs/operations.md explains it. */
export const SIDECAR_OPTIONS = {
  host: { env: 'SIDECAR_HOST', fallback: '127.0.0.1' },
  port: { env: 'SIDECAR_PORT', fallback: '8090' },
  'data-dir': { env: 'SIDECAR_DATA_DIR', fallback: './data/sidecar' },
  'watch-dir': { env: 'SIDECAR_WATCH_DIR', fallback: '', shownDefault: 'off' },
  snapshot: { env: 'SIDECAR_SNAPSHOT', fallback: '', shownDefault: 'none' },
  'log-level': { env: 'SIDECAR_LOG_LEVEL', fallback: 'info' },
  'max-body-bytes': { env: 'SIDECAR_MAX_BODY_BYTES', fallback: String(64 * 1024) },
  'max-snapshot-bytes': { env: 'SIDECAR_MAX_SNAPSHOT_BYTES', fallback: String(1024 * 1024 * 1024), shownDefault: '1073741824 (1 GiB)' },
  'max-inflight-body-bytes': {
    env: 'SIDECAR_MAX_INFLIGHT_BODY_BYTES',
    fallback: String(DEFAULT_BODY_BUDGET_BYTES),
    shownDefault: '268435456 (256 MiB)',
  },
  'max-queued-snapshots': { env: 'SIDECAR_MAX_QUEUED_SNAPSHOTS', fallback: '2' },
  'node-name': { env: 'SIDECAR_NODE_NAME', fallback: hostname(), shownDefault: 'the host name' },
  'control-url': { env: 'SIDECAR_CONTROL_URL', fallback: '', shownDefault: 'none' },
  durability: { env: 'SIDECAR_DURABILITY', fallback: 'normal' },
  'admission-seconds': { env: 'SIDECAR_ADMISSION_SECONDS', fallback: '7200' },
  'lease-chunk': { env: 'SIDECAR_LEASE_CHUNK', fallback: '10.00' },
  'postpaid-offline': { env: 'SIDECAR_POSTPAID_OFFLINE', fallback: 'allow' },
  'centre-timeout-ms': { env: 'SIDECAR_CENTRE_TIMEOUT_MS', fallback: '2000' },
  'round-cdrs': { env: 'SIDECAR_ROUND_CDRS', fallback: String(DEFAULT_ROUND_CDRS) },
  'lease-idle-seconds': { env: 'SIDECAR_LEASE_IDLE_SECONDS', fallback: '60' },
  'opensips-mi': { env: 'SIDECAR_OPENSIPS_MI', fallback: '', shownDefault: 'none' },
  'slice-seconds': { env: 'SIDECAR_SLICE_SECONDS', fallback: String(DEFAULT_SLICE_SECONDS) },
  'slice-end-margin-ms': { env: 'SIDECAR_SLICE_END_MARGIN_MS', fallback: '', shownDefault: 'a quarter of a slice, at most 6000' },
  'opensips-spool': { env: 'SIDECAR_OPENSIPS_SPOOL', fallback: '', shownDefault: 'none' },
  'spool-park-days': { env: 'SIDECAR_SPOOL_PARK_DAYS', fallback: '7' },
  'delta-wait-ms': { env: 'SIDECAR_DELTA_WAIT_MS', fallback: '8000' },
  'recall-wait-ms': { env: 'SIDECAR_RECALL_WAIT_MS', fallback: '300' },
  'admission-deadline-ms': { env: 'SIDECAR_ADMISSION_DEADLINE_MS', fallback: '900' },
  'centre-secret-file': { env: 'SIDECAR_CENTRE_SECRET_FILE', fallback: '', shownDefault: 'none (CENTRE_SECRET)' },
  'metrics-hostnames': { env: 'SIDECAR_METRICS_HOSTNAMES', fallback: '', shownDefault: 'none (IP literals and localhost)' },
} as const satisfies OptionTable;

export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): SidecarConfig {
  const options = new OptionReader(SIDECAR_OPTIONS, argv, env);
  const leaseChunkMicro = parseMicro(options.string('lease-chunk'));
  if (!(leaseChunkMicro > 0)) throw new Error('--lease-chunk must be a positive decimal amount such as 10.00');
  const mi = options.optional('opensips-mi');
  const opensipsMi = mi === null ? null : parseMiAddress(mi);
  if (opensipsMi === null && mi !== null)
    throw new Error('--opensips-mi must be http://host:port/mi (mi_http), udp:host:port (mi_datagram) or /path/to/fifo (mi_fifo)');
  const sliceSeconds = options.integer('slice-seconds', 4, 86_400);
  // Below the renewal's lead, so that a call short of its next slice is still retried before it is ended.
  const sliceEndMarginMs =
    options.optional('slice-end-margin-ms') === null
      ? defaultEndMarginMs(sliceSeconds)
      : options.integer('slice-end-margin-ms', 0, renewLeadMs(sliceSeconds) - 1);
  const controlUrl = options.optional('control-url');
  const controlUrls = controlUrl === null ? null : controlUrl.split(',').map((url) => url.trim());
  if (controlUrls !== null && (controlUrls.length > 8 || controlUrls.some((url) => !/^https?:\/\/[^/,\s]+$/.test(url))))
    throw new Error('--control-url must be http(s)://host:port with no path, or up to 8 of them separated by commas');
  // The secret itself is never an option: flags show in the process table. A file, or the environment.
  const secretFile = options.optional('centre-secret-file');
  const secretValue = env.CENTRE_SECRET?.trim() ?? '';
  const centreSecret: CentreSecretSource | null =
    secretFile !== null ? { file: secretFile } : secretValue !== '' ? { value: secretValue } : null;
  return {
    host: options.host('host'),
    port: options.integer('port', 0, 65535),
    dataDir: options.string('data-dir'),
    watchDir: options.optional('watch-dir'),
    snapshotFile: options.optional('snapshot'),
    logLevel: options.oneOf('log-level', LOG_LEVELS),
    maxBodyBytes: options.integer('max-body-bytes', 1024, 16 * 1024 * 1024),
    maxSnapshotBytes: options.integer('max-snapshot-bytes', 1024, 4 * 1024 * 1024 * 1024),
    maxInflightBodyBytes: options.integer('max-inflight-body-bytes', 1024, 64 * 1024 * 1024 * 1024),
    maxQueuedSnapshots: options.integer('max-queued-snapshots', 0, 1000),
    nodeName: options.string('node-name'),
    controlUrls,
    durability: options.oneOf('durability', ['normal', 'full'] as const),
    admissionSeconds: options.integer('admission-seconds', 1, 86_400),
    leaseChunkMicro,
    offlinePostpaid: options.oneOf('postpaid-offline', ['allow', 'deny'] as const),
    centreTimeoutMs: options.integer('centre-timeout-ms', 50, 60_000),
    // Up to a round's most CDRs (main.ts's maxSettlements): a larger count would never be reached by one round.
    roundCdrs: options.integer('round-cdrs', 0, MAX_ROUND_CDRS),
    leaseIdleSeconds: options.integer('lease-idle-seconds', 1, 86_400),
    opensipsMi,
    sliceSeconds,
    sliceEndMarginMs,
    opensipsSpool: options.optional('opensips-spool'),
    spoolParkDays: options.integer('spool-park-days', 1, 365),
    // The centre holds an ask at most 8 s (under uWebSockets.js's idle close): more is refused there.
    deltaWaitMs: options.integer('delta-wait-ms', 0, 8000),
    // A waiting admission holds an OpenSIPS worker (synchronous rest_client): kept short.
    recallWaitMs: options.integer('recall-wait-ms', 0, 300),
    // Below the script's rest_curl_timeout (1 s by default), after which OpenSIPS answers the call itself.
    admissionDeadlineMs: options.integer('admission-deadline-ms', 50, 60_000),
    centreSecret,
    metricsHostnames: parseHostnames(options.string('metrics-hostnames'), '--metrics-hostnames'),
  };
}
