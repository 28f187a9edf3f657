import { LOG_LEVELS, OptionReader, type OptionTable } from '../src/core/config/options.js';
import { join } from 'node:path';
import { DEFAULT_BODY_BUDGET_BYTES } from '../src/core/http/body-budget.js';
import { DEFAULT_LEASE_VALID_SECONDS } from '../src/core/protocol/node-sync.js';
import { DEFAULT_NODE_HOSTS, parseHostAllowlist } from './nodes/hosts.js';

/** Control-plane settings: command-line flags, else CONTROL_* environment variables, else defaults. */
export interface ControlConfig {
  host: string;
  port: number;
  dataDir: string;
  logLevel: string;
  miTimeoutMs: number;
  leaseValidSeconds: number;
  /** Directories under which node files (snapshot drops, MI FIFOs, drouting databases) may be; see sync/nodes/. */
  nodeFilesRoots: string[];
  /** Hosts (names, addresses, networks) the control plane may send a node's requests to, comma-separated. */
  nodeHosts: string;
  /** Bytes all request bodies being read may hold together (503 server_busy past it). */
  maxInflightBodyBytes: number;
  /** `sync-run`: one routing sync, its report on stdout, then exit. */
  command: 'serve' | 'sync-run';
}

/** Every option, as docs/operations.md explains it. */
export const CONTROL_OPTIONS = {
  host: { env: 'CONTROL_HOST', fallback: '127.0.0.1' },
  port: { env: 'CONTROL_PORT', fallback: '8080' },
  'data-dir': { env: 'CONTROL_DATA_DIR', fallback: './data/control' },
  'log-level': { env: 'CONTROL_LOG_LEVEL', fallback: 'info' },
  'mi-timeout-ms': { env: 'CONTROL_MI_TIMEOUT_MS', fallback: '30000' },
  'lease-valid-seconds': { env: 'CONTROL_LEASE_VALID_SECONDS', fallback: String(DEFAULT_LEASE_VALID_SECONDS) },
  'node-files-root': { env: 'CONTROL_NODE_FILES_ROOT', fallback: '', shownDefault: '<data-dir>/nodes' },
  'node-hosts': { env: 'CONTROL_NODE_HOSTS', fallback: DEFAULT_NODE_HOSTS },
  'max-inflight-body-bytes': {
    env: 'CONTROL_MAX_INFLIGHT_BODY_BYTES',
    fallback: String(DEFAULT_BODY_BUDGET_BYTES),
    shownDefault: '268435456 (256 MiB)',
  },
} as const satisfies OptionTable;

export function loadControlConfig(argv: string[], env: NodeJS.ProcessEnv): ControlConfig {
  const options = new OptionReader(CONTROL_OPTIONS, argv, env, { allowPositionals: true });
  const dataDir = options.string('data-dir');
  const roots = options.string('node-files-root');
  const [command = 'serve', ...extra] = options.positionals;
  if ((command !== 'serve' && command !== 'sync-run') || extra.length > 0)
    throw new Error(`unknown command ${JSON.stringify(options.positionals.join(' '))}: the only command is sync-run`);
  return {
    host: options.host('host'),
    port: options.integer('port', 0, 65535),
    dataDir,
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
    maxInflightBodyBytes: options.integer('max-inflight-body-bytes', 1024, 64 * 1024 * 1024 * 1024),
    command,
  };
}

/** Refused at start, naming the flag, rather than at the first node. */
function checkedHosts(text: string): string {
  parseHostAllowlist(text);
  return text;
}
