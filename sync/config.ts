import { LOG_LEVELS, OptionReader, type OptionTable } from '../src/core/config/options.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bearerToken } from '../src/core/http/bearer.js';
import { DEFAULT_BODY_BUDGET_BYTES } from '../src/core/http/body-budget.js';
import { DEFAULT_LEASE_VALID_SECONDS } from '../src/core/protocol/node-sync.js';
import { DEFAULT_NODE_HOSTS, parseHostAllowlist } from './nodes/hosts.js';
import { parseAdminHostnames } from './admin/admin-hosts.js';
import type { PartnerApiConfig, PartnerLimitsConfig } from './partner/config.js';
import { parseTrustedProxies } from './partner/client-address.js';
import { DEFAULT_PARTNER_LIMITS, DEFAULT_TENANT_RATE } from './partner/limits.js';
import { DEFAULT_DELTA_RETENTION, type DeltaRetention } from './deltas/log.js';
import { parseStoreLocation, type StoreLocation } from './store/store-location.js';

/** Control-plane settings: command-line flags, else CONTROL_* environment variables, else defaults. */
export interface ControlConfig {
  host: string;
  port: number;
  dataDir: string;
  /** Where the stores are: `--store`, default `<data-dir>/config.db` (SQLite). */
  store: StoreLocation;
  logLevel: string;
  miTimeoutMs: number;
  leaseValidSeconds: number;
  /** How often the centre reads every sidecar's metrics for the console (decisions per second, Live charts). */
  consoleSampleSeconds: number;
  /** Directories under which node files (snapshot drops, MI FIFOs, drouting databases) may be; see sync/nodes/. */
  nodeFilesRoots: string[];
  /** Hosts (names, addresses, networks) the control plane may send a node's requests to, comma-separated. */
  nodeHosts: string;
  /** Bytes all request bodies being read may hold together (503 server_busy past it). */
  maxInflightBodyBytes: number;
  /** The partner API's listener and its token checks (sync/partner/); null when no issuer is configured. */
  partner: PartnerApiConfig | null;
  /** How much of the delta log is kept (sync/deltas/log.ts): the newest `count` deltas, none older than `seconds`. */
  deltaRetention: DeltaRetention;
  /** drouting follows live changes at most once per this many seconds (sync/distribution/drouting-follow.ts); 0: off. */
  droutingFollowSeconds: number;
  /** The token a Prometheus may scrape GET /metrics with instead of from an auth_ips address; null: none. */
  metricsToken: string | null;
  /** Names the admin API and console answer an operator under, besides IP literals and localhost (sync/admin/admin-hosts.ts). */
  adminHostnames: string[];
  /** `sync-run`: one routing sync, its report on stdout, then exit. `migrate`: the schema brought up to date, then exit. */
  command: 'serve' | 'sync-run' | 'migrate';
}

/** Every option, as docs/operations.md explains it. */
export const CONTROL_OPTIONS = {
  host: { env: 'CONTROL_HOST', fallback: '127.0.0.1' },
  port: { env: 'CONTROL_PORT', fallback: '8080' },
  'data-dir': { env: 'CONTROL_DATA_DIR', fallback: './data/control' },
  store: { env: 'CONTROL_STORE', fallback: '', shownDefault: '<data-dir>/config.db' },
  'log-level': { env: 'CONTROL_LOG_LEVEL', fallback: 'info' },
  'mi-timeout-ms': { env: 'CONTROL_MI_TIMEOUT_MS', fallback: '30000' },
  'lease-valid-seconds': { env: 'CONTROL_LEASE_VALID_SECONDS', fallback: String(DEFAULT_LEASE_VALID_SECONDS) },
  'node-files-root': { env: 'CONTROL_NODE_FILES_ROOT', fallback: '', shownDefault: '<data-dir>/nodes' },
  'node-hosts': { env: 'CONTROL_NODE_HOSTS', fallback: DEFAULT_NODE_HOSTS },
  'admin-hostnames': { env: 'CONTROL_ADMIN_HOSTNAMES', fallback: '', shownDefault: 'none (IP literals and localhost)' },
  'console-sample-seconds': { env: 'CONTROL_CONSOLE_SAMPLE_SECONDS', fallback: '10' },
  'max-inflight-body-bytes': {
    env: 'CONTROL_MAX_INFLIGHT_BODY_BYTES',
    fallback: String(DEFAULT_BODY_BUDGET_BYTES),
    shownDefault: '268435456 (256 MiB)',
  },
  'delta-retention-count': { env: 'CONTROL_DELTA_RETENTION_COUNT', fallback: String(DEFAULT_DELTA_RETENTION.count) },
  'delta-retention-seconds': { env: 'CONTROL_DELTA_RETENTION_SECONDS', fallback: String(DEFAULT_DELTA_RETENTION.seconds) },
  'drouting-follow-seconds': { env: 'CONTROL_DROUTING_FOLLOW_SECONDS', fallback: '5' },
  'metrics-token-file': { env: 'CONTROL_METRICS_TOKEN_FILE', fallback: '', shownDefault: 'none (CONTROL_METRICS_TOKEN)' },
  'partner-host': { env: 'CONTROL_PARTNER_HOST', fallback: '127.0.0.1' },
  'partner-port': { env: 'CONTROL_PARTNER_PORT', fallback: '8081' },
  'partner-stage-prefix': { env: 'CONTROL_PARTNER_STAGE_PREFIX', fallback: '', shownDefault: 'none' },
  'partner-jwt-issuer': { env: 'CONTROL_PARTNER_JWT_ISSUER', fallback: '', shownDefault: 'none (partner API off)' },
  'partner-jwt-audience': { env: 'CONTROL_PARTNER_JWT_AUDIENCE', fallback: '', shownDefault: 'none' },
  'partner-jwks-url': { env: 'CONTROL_PARTNER_JWKS_URL', fallback: '', shownDefault: 'none' },
  'partner-jwks-file': { env: 'CONTROL_PARTNER_JWKS_FILE', fallback: '', shownDefault: 'none' },
  'partner-retention-hours': { env: 'CONTROL_PARTNER_RETENTION_HOURS', fallback: '168' },
  'partner-tenant-rate': { env: 'CONTROL_PARTNER_TENANT_RATE', fallback: String(DEFAULT_TENANT_RATE.perSecond) },
  'partner-tenant-burst': { env: 'CONTROL_PARTNER_TENANT_BURST', fallback: String(DEFAULT_TENANT_RATE.burst) },
  'partner-auth-failures-per-minute': {
    env: 'CONTROL_PARTNER_AUTH_FAILURES_PER_MINUTE',
    fallback: String(DEFAULT_PARTNER_LIMITS.authFailures.perMinute),
  },
  'partner-auth-failure-burst': { env: 'CONTROL_PARTNER_AUTH_FAILURE_BURST', fallback: String(DEFAULT_PARTNER_LIMITS.authFailures.burst) },
  'partner-trusted-proxies': { env: 'CONTROL_PARTNER_TRUSTED_PROXIES', fallback: '', shownDefault: 'none (the socket address)' },
} as const satisfies OptionTable;

export function loadControlConfig(argv: string[], env: NodeJS.ProcessEnv): ControlConfig {
  const options = new OptionReader(CONTROL_OPTIONS, argv, env, { allowPositionals: true });
  const dataDir = options.string('data-dir');
  const roots = options.string('node-files-root');
  const [command = 'serve', ...extra] = options.positionals;
  if ((command !== 'serve' && command !== 'sync-run' && command !== 'migrate') || extra.length > 0)
    throw new Error(`unknown command ${JSON.stringify(options.positionals.join(' '))}: the commands are sync-run and migrate`);
  const store = options.string('store');
  return {
    host: options.host('host'),
    port: options.integer('port', 0, 65535),
    dataDir,
    store: parseStoreLocation(store.trim() === '' ? join(dataDir, 'config.db') : store),
    // A comma list; none given: a folder of the control plane's own, so that nothing else is in reach.
    nodeFilesRoots:
      roots.trim() === ''
        ? [join(dataDir, 'nodes')]
        : roots
            .split(',')
            .map((root) => root.trim())
            .filter((root) => root !== ''),
    nodeHosts: checkedHosts(options.string('node-hosts')),
    logLevel: options.oneOf('log-level', LOG_LEVELS),
    miTimeoutMs: options.integer('mi-timeout-ms', 100, 600_000),
    leaseValidSeconds: options.integer('lease-valid-seconds', 1, 7 * 86_400),
    consoleSampleSeconds: options.integer('console-sample-seconds', 1, 300),
    maxInflightBodyBytes: options.integer('max-inflight-body-bytes', 1024, 64 * 1024 * 1024 * 1024),
    partner: partnerConfig(options),
    deltaRetention: {
      count: options.integer('delta-retention-count', 1, 100_000_000),
      seconds: options.integer('delta-retention-seconds', 1, 365 * 86_400),
    },
    droutingFollowSeconds: options.integer('drouting-follow-seconds', 0, 3600),
    metricsToken: metricsToken(options.optional('metrics-token-file'), env.CONTROL_METRICS_TOKEN),
    adminHostnames: parseAdminHostnames(options.string('admin-hostnames')),
    command,
  };
}

/** A guessable token would open the metrics to anyone who can reach the admin listener. */
const METRICS_TOKEN_MIN = 16;

/**
 * The scrape token, from a file (read at start; a new token needs a restart), else the environment: never a
 * flag, since flags show in the process table. It must be one Bearer token (token68) of 16 characters or more.
 */
function metricsToken(file: string | null, value: string | undefined): string | null {
  const token = (file === null ? (value ?? '') : readFileSync(file, 'utf8')).trim();
  if (token === '') {
    if (file !== null) throw new Error(`--metrics-token-file ${file} is empty`);
    return null;
  }
  if (token.length < METRICS_TOKEN_MIN || bearerToken(`Bearer ${token}`) !== token)
    throw new Error(`the metrics token must be at least ${METRICS_TOKEN_MIN} characters of A-Z a-z 0-9 - . _ ~ + / (a trailing = allowed)`);
  return token;
}

/** Refused at start, naming the flag, rather than at the first node. */
function checkedHosts(text: string): string {
  parseHostAllowlist(text);
  return text;
}

/**
 * The partner API is internet-facing and can only authenticate against an issuer the operator names, so it
 * listens only when one is configured; then the audience and one JWKS source are required, and refused at
 * start when missing, rather than answering every partner 403.
 */
function partnerConfig(options: OptionReader<typeof CONTROL_OPTIONS>): PartnerApiConfig | null {
  const issuer = options.string('partner-jwt-issuer').trim();
  if (issuer === '') return null;
  const audience = options.string('partner-jwt-audience').trim();
  if (audience === '') throw new Error('--partner-jwt-audience (the app client id) is required with --partner-jwt-issuer');
  const url = options.string('partner-jwks-url').trim();
  const file = options.string('partner-jwks-file').trim();
  if ((url === '') === (file === '')) throw new Error('give exactly one of --partner-jwks-url and --partner-jwks-file');
  if (url !== '') checkJwksUrl(url);
  const prefix = options.string('partner-stage-prefix').trim().replace(/\/+$/, '');
  if (prefix !== '' && !/^(\/[A-Za-z0-9_-]+)+$/.test(prefix))
    throw new Error(`--partner-stage-prefix must be a path such as /prod, not ${JSON.stringify(prefix)}`);
  return {
    host: options.host('partner-host'),
    port: options.integer('partner-port', 0, 65535),
    stagePrefix: prefix,
    issuer,
    audience,
    jwksUrl: url === '' ? null : url,
    jwksFile: file === '' ? null : file,
    retentionHours: options.integer('partner-retention-hours', 1, 24 * 366),
    limits: partnerLimits(options),
  };
}

/** The partner API's limits (sync/partner/limits.ts); a tenant rate of 0 turns that one off (a gateway in front limits already). */
function partnerLimits(options: OptionReader<typeof CONTROL_OPTIONS>): PartnerLimitsConfig {
  const rate = options.integer('partner-tenant-rate', 0, 1_000_000);
  return {
    authFailures: {
      perMinute: options.integer('partner-auth-failures-per-minute', 1, 1_000_000),
      burst: options.integer('partner-auth-failure-burst', 1, 1_000_000),
    },
    tenantRate: rate === 0 ? null : { perMinute: rate * 60, burst: options.integer('partner-tenant-burst', 1, 10_000_000) },
    trustedProxies: parseTrustedProxies(options.string('partner-trusted-proxies')),
  };
}

/** Keys come only from where the operator said, over TLS unless the host is this machine (tests, a local proxy). */
function checkJwksUrl(text: string): void {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`--partner-jwks-url is not a URL: ${JSON.stringify(text)}`);
  }
  const loopback = url.hostname === 'localhost' || url.hostname === '127.0.0.1' || url.hostname === '[::1]';
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback))
    throw new Error('--partner-jwks-url must be https:// (http:// only to this machine)');
}
