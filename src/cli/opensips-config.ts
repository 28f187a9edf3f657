/**
 * Renders the OpenSIPS script (opensips-config/opensips.cfg.tmpl) for one node:
 *   opensips-config --values values.json --out /etc/opensips/opensips.cfg [--template FILE]
 * Values come from the JSON file, each overridable by an OPENSIPS_CFG_<KEY>
 * environment variable (listeners as a comma-separated list). Every value is
 * checked, and a placeholder the renderer does not know, a value it does not
 * know, or a value that is missing is an error: a half-rendered script must
 * never reach a switch.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { CATALOGUE, type CatalogueEntry } from '../core/errors/catalogue.js';

export class ConfigError extends Error {}

export const ENV_PREFIX = 'OPENSIPS_CFG_';
export const DEFAULT_TEMPLATE = fileURLToPath(new URL('../../../opensips-config/opensips.cfg.tmpl', import.meta.url));

export type RestMode = 'sync' | 'async';

export interface Listener {
  proto: 'udp' | 'tcp';
  host: string;
  port: number;
}

export interface OpensipsValues {
  sidecar_host: string;
  sidecar_port: number;
  listeners: Listener[];
  drouting_db_url: string;
  mi_http_host: string;
  mi_http_port: number;
  rest_connection_timeout: number;
  rest_curl_timeout: number;
  rest_mode: RestMode;
  max_failover_attempts: number;
  admission_degraded_policy: 'allow' | 'reject';
  degraded_cps_limit: number;
  degraded_port_limit: number;
  sip_realm: string;
  digest_algorithms: string;
  udp_workers: number;
  tcp_workers: number;
  module_path: string;
  log_level: number;
  log_target: 'syslog' | 'stderr';
  /** The syslog facility (OpenSIPS's name, LOG_LOCAL0 … LOG_LOCAL7, LOG_DAEMON, …) when log_target is syslog; optional, LOG_LOCAL0. */
  syslog_facility: string;
  max_call_duration_seconds: number;
  spool_db_path: string;
  /**
   * The most OpenSIPS asks the kernel for as each SIP socket's receive buffer (its `maxbuffer`); optional, 2 MiB.
   * The kernel grants at most net.core.rmem_max, doubled.
   */
  sip_receive_buffer_bytes: number;
  /** One DECIDE-US log line per INVITE (bench/through-opensips.ts reads them); optional, off by default. */
  decision_timing_log: boolean;
}

type Key = keyof OpensipsValues;

function integer(key: string, raw: unknown, min: number, max: number): number {
  const value = typeof raw === 'string' && /^-?\d+$/.test(raw.trim()) ? Number(raw.trim()) : raw;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigError(`${key} must be a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

function text(key: string, raw: unknown): string {
  if (typeof raw !== 'string') throw new ConfigError(`${key} must be a string, got ${JSON.stringify(raw)}`);
  return raw.trim();
}

function oneOf<T extends string>(key: string, raw: unknown, allowed: readonly T[]): T {
  const value = text(key, raw);
  if (!(allowed as readonly string[]).includes(value))
    throw new ConfigError(`${key} must be one of ${allowed.join(', ')}, got ${JSON.stringify(raw)}`);
  return value as T;
}

/** An IP literal (no host names: the script must not depend on DNS to reach its sidecar). */
function ipAddress(key: string, raw: unknown): string {
  const value = text(key, raw).replace(/^\[(.*)\]$/, '$1');
  if (isIP(value) === 0) throw new ConfigError(`${key} must be an IPv4 or IPv6 address, got ${JSON.stringify(raw)}`);
  return value;
}

const hostPort = (host: string, port: number): string => (isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`);

function listener(key: string, raw: unknown): Listener {
  const value = text(key, raw);
  const match = /^(udp|tcp):(\[[^\]]*\]|[^:[\]]+):(\d+)$/.exec(value);
  if (match === null)
    throw new ConfigError(`${key} must look like udp:203.0.113.5:5060 or tcp:[2001:db8::5]:5060, got ${JSON.stringify(raw)}`);
  const host = ipAddress(key, match[2]);
  // Via and Record-Route carry the socket's address: a wildcard would advertise 0.0.0.0.
  if (host === '0.0.0.0' || host === '::')
    throw new ConfigError(`${key}: bind a real address, not ${host} (OpenSIPS puts it in Via and Record-Route)`);
  return { proto: match[1] as 'udp' | 'tcp', host, port: integer(key, match[3], 1, 65535) };
}

function listeners(key: string, raw: unknown): Listener[] {
  const items = typeof raw === 'string' ? raw.split(',').filter((item) => item.trim() !== '') : raw;
  if (!Array.isArray(items) || items.length === 0)
    throw new ConfigError(`${key} must be a non-empty list such as ["udp:203.0.113.5:5060"]`);
  const parsed = items.map((item, i) => listener(`${key}[${i}]`, item));
  const seen = new Set<string>();
  for (const item of parsed) {
    const id = `${item.proto}:${hostPort(item.host, item.port)}`;
    if (seen.has(id)) throw new ConfigError(`${key}: ${id} is listed twice`);
    seen.add(id);
  }
  return parsed;
}

function databaseUrl(key: string, raw: unknown): string {
  const value = text(key, raw);
  if (!/^(sqlite:\/\/\/\/?[^"\s]+|mysql:\/\/[^"\s]+|postgres:\/\/[^"\s]+)$/.test(value)) {
    throw new ConfigError(`${key} must be sqlite:///absolute/path.db, mysql://… or postgres://…, got ${JSON.stringify(raw)}`);
  }
  return value;
}

const ALGORITHMS = ['MD5', 'MD5-sess', 'SHA-256', 'SHA-256-sess', 'SHA-512-256', 'SHA-512-256-sess'];

function digestAlgorithms(key: string, raw: unknown): string {
  const names = text(key, raw)
    .split(',')
    .map((name) => name.trim());
  const canonical = names.map((name) => ALGORITHMS.find((known) => known.toLowerCase() === name.toLowerCase()));
  const bad = names.filter((_, i) => canonical[i] === undefined);
  if (names.length === 0 || bad.length > 0)
    throw new ConfigError(`${key} must be a comma-separated list of ${ALGORITHMS.join(', ')}, got ${JSON.stringify(raw)}`);
  return canonical.join(',');
}

/** The facilities OpenSIPS 3.6 knows (str_fac in its dprint.c); it refuses any other name at start. */
const SYSLOG_FACILITIES = [
  'LOG_AUTH',
  'LOG_AUTHPRIV',
  'LOG_CRON',
  'LOG_DAEMON',
  'LOG_FTP',
  'LOG_KERN',
  'LOG_LPR',
  'LOG_MAIL',
  'LOG_NEWS',
  'LOG_SYSLOG',
  'LOG_USER',
  'LOG_UUCP',
  'LOG_LOCAL0',
  'LOG_LOCAL1',
  'LOG_LOCAL2',
  'LOG_LOCAL3',
  'LOG_LOCAL4',
  'LOG_LOCAL5',
  'LOG_LOCAL6',
  'LOG_LOCAL7',
];

/** A syslog facility as the operator's syslog names it (`local3`) or as OpenSIPS does (`LOG_LOCAL3`). */
function syslogFacility(key: string, raw: unknown): string {
  const value = text(key, raw).toUpperCase();
  const name = value.startsWith('LOG_') ? value : `LOG_${value}`;
  if (!SYSLOG_FACILITIES.includes(name))
    throw new ConfigError(`${key} must be a syslog facility such as LOG_LOCAL0 … LOG_LOCAL7 or LOG_DAEMON, got ${JSON.stringify(raw)}`);
  return name;
}

function flag(key: string, raw: unknown): boolean {
  // The environment gives strings: "true" and "false" stand for the JSON file's booleans.
  const value = typeof raw === 'string' ? ({ true: true, false: false } as Record<string, boolean>)[raw.trim()] : raw;
  if (typeof value !== 'boolean') throw new ConfigError(`${key} must be true or false, got ${JSON.stringify(raw)}`);
  return value;
}

const PARSERS: { [K in Key]: (key: string, raw: unknown) => OpensipsValues[K] } = {
  sidecar_host: ipAddress,
  sidecar_port: (key, raw) => integer(key, raw, 1, 65535),
  listeners,
  drouting_db_url: databaseUrl,
  mi_http_host: ipAddress,
  mi_http_port: (key, raw) => integer(key, raw, 1, 65535),
  rest_connection_timeout: (key, raw) => integer(key, raw, 1, 60),
  rest_curl_timeout: (key, raw) => integer(key, raw, 1, 60),
  rest_mode: (key, raw) => oneOf(key, raw, ['sync', 'async'] as const),
  max_failover_attempts: (key, raw) => integer(key, raw, 1, 10),
  admission_degraded_policy: (key, raw) => oneOf(key, raw, ['allow', 'reject'] as const),
  degraded_cps_limit: (key, raw) => integer(key, raw, 0, 100_000),
  degraded_port_limit: (key, raw) => integer(key, raw, 0, 1_000_000),
  sip_realm: (key, raw) => {
    const value = text(key, raw);
    if (value !== '' && !/^[A-Za-z0-9.-]+$/.test(value))
      throw new ConfigError(`${key} must be a domain name, or "" to take it from the request, got ${JSON.stringify(raw)}`);
    return value;
  },
  digest_algorithms: digestAlgorithms,
  udp_workers: (key, raw) => integer(key, raw, 1, 256),
  tcp_workers: (key, raw) => integer(key, raw, 1, 256),
  module_path: (key, raw) => {
    const value = text(key, raw);
    if (!/^\/[^"\s]*$/.test(value)) throw new ConfigError(`${key} must be an absolute directory path, got ${JSON.stringify(raw)}`);
    return value.endsWith('/') ? value : `${value}/`;
  },
  log_level: (key, raw) => integer(key, raw, -3, 4),
  log_target: (key, raw) => oneOf(key, raw, ['syslog', 'stderr'] as const),
  syslog_facility: syslogFacility,
  max_call_duration_seconds: (key, raw) => integer(key, raw, 60, 7 * 86_400),
  spool_db_path: (key, raw) => {
    const value = text(key, raw);
    if (!/^\/[^"'\s]*[^/"'\s]$/.test(value)) throw new ConfigError(`${key} must be an absolute file path, got ${JSON.stringify(raw)}`);
    return value;
  },
  sip_receive_buffer_bytes: (key, raw) => integer(key, raw, 65_536, 64 * 1024 * 1024),
  decision_timing_log: flag,
};

/** The values a node may leave out (measurement switches), with what they mean then. */
/** What `sip_receive_buffer_bytes` is when left out (bench/through-opensips.ts gives SIPp the same). */
export const DEFAULT_SIP_RECEIVE_BUFFER_BYTES = 2 * 1024 * 1024;

const DEFAULTS: Partial<Record<Key, unknown>> = {
  decision_timing_log: false,
  syslog_facility: 'LOG_LOCAL0',
  sip_receive_buffer_bytes: DEFAULT_SIP_RECEIVE_BUFFER_BYTES,
};

export const VALUE_KEYS = Object.keys(PARSERS) as Key[];

/**
 * The values from a parsed JSON file (or null) and the environment: each
 * OPENSIPS_CFG_<KEY> overrides the file's KEY. Keys starting with "_" in the
 * file are comments.
 */
export function loadValues(file: unknown, env: NodeJS.ProcessEnv = {}): OpensipsValues {
  if (file !== null && (typeof file !== 'object' || Array.isArray(file))) throw new ConfigError('the values file must hold a JSON object');
  const raw: Record<string, unknown> = {};
  for (const [key, value] of Object.entries((file ?? {}) as Record<string, unknown>)) {
    if (key.startsWith('_')) continue;
    if (!(key in PARSERS)) throw new ConfigError(`unknown value ${JSON.stringify(key)} (known: ${VALUE_KEYS.join(', ')})`);
    raw[key] = value;
  }
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || value === undefined) continue;
    const key = name.slice(ENV_PREFIX.length).toLowerCase();
    if (!(key in PARSERS))
      throw new ConfigError(
        `unknown environment variable ${name} (known: ${VALUE_KEYS.map((k) => ENV_PREFIX + k.toUpperCase()).join(', ')})`,
      );
    raw[key] = value;
  }
  for (const [key, value] of Object.entries(DEFAULTS)) raw[key] ??= value;
  const missing = VALUE_KEYS.filter((key) => raw[key] === undefined || raw[key] === null);
  if (missing.length > 0) {
    throw new ConfigError(
      `missing value${missing.length > 1 ? 's' : ''} ${missing.join(', ')} (set in the values file or as ${missing.map((key) => ENV_PREFIX + key.toUpperCase()).join(', ')})`,
    );
  }
  const values = {} as Record<Key, unknown>;
  for (const key of VALUE_KEYS) values[key] = PARSERS[key](key, raw[key]);
  const parsed = values as unknown as OpensipsValues;
  if (parsed.rest_connection_timeout > parsed.rest_curl_timeout) {
    throw new ConfigError('rest_connection_timeout must not exceed rest_curl_timeout (the transfer timeout includes the connect)');
  }
  if (parsed.sidecar_host === parsed.mi_http_host && parsed.sidecar_port === parsed.mi_http_port) {
    throw new ConfigError(`mi_http and the sidecar cannot share ${hostPort(parsed.sidecar_host, parsed.sidecar_port)}`);
  }
  return parsed;
}

const DB_MODULES: Record<string, string> = { sqlite: 'db_sqlite.so', mysql: 'db_mysql.so', postgres: 'db_postgres.so' };

/** The plain placeholders and their rendered text. */
export function placeholderValues(values: OpensipsValues): Record<string, string> {
  const tcp = values.listeners.some((item) => item.proto === 'tcp');
  const scheme = values.drouting_db_url.slice(0, values.drouting_db_url.indexOf(':'));
  return {
    SIDECAR_URL: `http://${hostPort(values.sidecar_host, values.sidecar_port)}`,
    SIP_RECEIVE_BUFFER_BYTES: String(values.sip_receive_buffer_bytes),
    LISTENERS: values.listeners.map((item) => `socket=${item.proto}:${hostPort(item.host, item.port)}`).join('\n'),
    WORKERS: [`udp_workers=${values.udp_workers}`, ...(tcp ? [`tcp_workers=${values.tcp_workers}`] : [])].join('\n'),
    TRANSPORT_MODULES: tcp ? 'loadmodule "proto_tcp.so"' : '# no TCP listener: proto_tcp not loaded',
    MODULE_PATH: values.module_path,
    LOG_LEVEL: String(values.log_level),
    LOG_TARGET:
      values.log_target === 'stderr'
        ? 'stderror_enabled=yes\nsyslog_enabled=no'
        : `stderror_enabled=no\nsyslog_enabled=yes\nsyslog_facility=${values.syslog_facility}`,
    // drouting's driver, and SQLite for the spool (once if drouting is on SQLite too).
    DB_MODULES: [...new Set([DB_MODULES[scheme], DB_MODULES.sqlite])].map((module) => `loadmodule "${module}"`).join('\n'),
    SPOOL_DB_URL: `sqlite://${values.spool_db_path}`,
    DROUTING_DB_URL: values.drouting_db_url,
    MI_HTTP_HOST: values.mi_http_host,
    MI_HTTP_PORT: String(values.mi_http_port),
    REST_CONNECTION_TIMEOUT: String(values.rest_connection_timeout),
    REST_CURL_TIMEOUT: String(values.rest_curl_timeout),
    REST_MODE: values.rest_mode,
    MAX_FAILOVER_ATTEMPTS: String(values.max_failover_attempts),
    ADMISSION_DEGRADED_POLICY: values.admission_degraded_policy,
    DEGRADED_CPS_LIMIT: String(values.degraded_cps_limit),
    DEGRADED_PORT_LIMIT: String(values.degraded_port_limit),
    SIP_REALM: values.sip_realm,
    DIGEST_ALGORITHMS: values.digest_algorithms,
    MAX_CALL_DURATION_SECONDS: String(values.max_call_duration_seconds),
    DECISION_TIMING_START: values.decision_timing_log ? `${kept(values, 'decide_t0')} = $Tsm;` : '# (decision_timing_log off)',
    DECISION_TIMING_LOG: values.decision_timing_log ? 'route(decision_timing);' : '# (decision_timing_log off)',
  };
}

/**
 * {{KEPT name}}: a value the script keeps from before a sidecar call to its answer route. In async mode the
 * request suspends and other messages run in the process meanwhile, so it must be an AVP (kept with the
 * transaction); in sync mode the answer route runs right after rest_post in the same execution, and a $var
 * does, without the shared-memory allocation each AVP assignment is (thousands of instructions in OpenSIPS's
 * allocator, measured with callgrind: docs/performance-log.md). `$avp(x) :=` and `$var(x) =` both replace.
 */
export function kept(values: OpensipsValues, name: string): string {
  return values.rest_mode === 'async' ? `$avp(${name})` : `$var(${name})`;
}

/**
 * One sidecar call: {{SIDECAR_POST path resume_route}} (the configured mode)
 * or {{SIDECAR_POST_SYNC path resume_route}} (always synchronous: failure
 * routes cannot suspend). The body is $var(sc_req); the answer lands in
 * {{KEPT sc_body}} and its HTTP status in {{KEPT sc_code}} (0: no answer),
 * which the resume route reads. After the call the script never continues
 * past the macro: async() suspends it, and the synchronous form ends with
 * exit once the resume route has run. rest_client leaves both untouched when
 * nothing came back: the code is reset first, and the body is read only
 * after a 200 (in sync mode it is not reset: a $var set to a shorter or NULL
 * value is allocated again at the next longer one).
 */
function sidecarPost(values: OpensipsValues, mode: RestMode, path: string, resume: string): string[] {
  const [body, code] = [kept(values, 'sc_body'), kept(values, 'sc_code')];
  const call = `rest_post("${placeholderValues(values).SIDECAR_URL}${path}", $var(sc_req), "application/json", ${body}, , ${code})`;
  const reset = values.rest_mode === 'async' ? [`${code} := 0;`, `${body} := NULL;`] : [`${code} = 0;`];
  if (mode === 'async') return [...reset, `async(${call}, ${resume}, ${values.rest_curl_timeout});`];
  return [...reset, `${call};`, `route(${resume});`, 'exit;'];
}

const MACROS = new Set(['SIDECAR_POST', 'SIDECAR_POST_SYNC']);

/** Replaces every placeholder; refuses unknown ones, malformed ones and leftovers. */
export function renderTemplate(template: string, values: OpensipsValues): string {
  const plain = placeholderValues(values);
  const routes = new Set([...template.matchAll(/^\s*route\[([A-Za-z0-9_]+)\]/gm)].map((match) => match[1]));
  const errors: string[] = [];
  const lines = template.split('\n').flatMap((line, index) => {
    const where = `template line ${index + 1}`;
    const macro = /^(\s*)\{\{(SIDECAR_POST(?:_SYNC)?)\s+(\S+)\s+(\S+)\s*\}\}\s*$/.exec(line);
    if (macro !== null) {
      const [, indent, name, path, resume] = macro;
      if (!/^\/api\/[a-z0-9/_-]+$/.test(path)) errors.push(`${where}: ${name} path ${path} is not an /api/… path`);
      if (!routes.has(resume)) errors.push(`${where}: ${name} resumes in route[${resume}], which the template does not define`);
      return sidecarPost(values, name === 'SIDECAR_POST' ? values.rest_mode : 'sync', path, resume).map((expanded) => indent + expanded);
    }
    const rendered = line.replace(/\{\{\s*([^{}]*?)\s*\}\}/g, (whole, name: string) => {
      const [word, argument = ''] = name.split(/\s+/);
      if (word === 'KEPT') {
        if (/^[a-z0-9_]+$/.test(argument)) return kept(values, argument);
        errors.push(`${where}: ${whole} needs a variable name`);
        return whole;
      }
      if (word === 'REASON_CODE') {
        // The script compares the answers' stable codes, taken from the catalogue so that a typo cannot ship.
        const entry = (CATALOGUE as Record<string, CatalogueEntry | undefined>)[argument];
        if (entry !== undefined && entry.sip !== null) return argument;
        errors.push(`${where}: ${whole} names no call refusal of the catalogue (src/core/errors/catalogue.ts)`);
        return whole;
      }
      if (MACROS.has(name.split(/\s+/)[0])) {
        errors.push(`${where}: ${name.split(/\s+/)[0]} must stand alone on its line as {{${name.split(/\s+/)[0]} /api/path resume_route}}`);
      } else if (!(name in plain)) {
        errors.push(`${where}: unknown placeholder ${whole} (known: ${Object.keys(plain).join(', ')})`);
      } else {
        return plain[name];
      }
      return whole;
    });
    if (errors.length === 0 && (rendered.includes('{{') || rendered.includes('}}'))) errors.push(`${where}: unbalanced placeholder braces`);
    return rendered.split('\n');
  });
  if (errors.length > 0) throw new ConfigError(errors.join('\n'));
  return lines.join('\n');
}

export function renderFiles(options: { template: string; values: string | null; out: string; env: NodeJS.ProcessEnv }): OpensipsValues {
  let file: unknown = null;
  if (options.values !== null) {
    let textValue: string;
    try {
      textValue = readFileSync(options.values, 'utf8');
    } catch (error) {
      throw new ConfigError(`cannot read the values file ${options.values}: ${(error as Error).message}`);
    }
    try {
      file = JSON.parse(textValue);
    } catch (error) {
      throw new ConfigError(`${options.values} is not valid JSON: ${(error as Error).message}`);
    }
  }
  const values = loadValues(file, options.env);
  let template: string;
  try {
    template = readFileSync(options.template, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read the template ${options.template}: ${(error as Error).message}`);
  }
  writeFileSync(options.out, renderTemplate(template, values));
  return values;
}

function main(): void {
  const usage = 'usage: opensips-config [--values values.json] --out opensips.cfg [--template opensips.cfg.tmpl]';
  try {
    const { values } = parseArgs({ options: { values: { type: 'string' }, out: { type: 'string' }, template: { type: 'string' } } });
    if (values.out === undefined) throw new ConfigError(`--out is required\n${usage}`);
    const rendered = renderFiles({
      template: values.template ?? DEFAULT_TEMPLATE,
      values: values.values ?? null,
      out: values.out,
      env: process.env,
    });
    process.stdout.write(`rendered ${values.out} (sidecar ${placeholderValues(rendered).SIDECAR_URL}, ${rendered.rest_mode} REST calls)\n`);
  } catch (error) {
    const message = error instanceof ConfigError || (error instanceof TypeError && 'code' in error) ? error.message : String(error);
    process.stderr.write(`opensips-config: ${message}\n`);
    process.exit(2);
  }
}

// Run only as the command: the tests import the functions above.
const entry = process.argv[1] as string | undefined;
if (entry !== undefined && import.meta.url === pathToFileURL(entry).href) main();
