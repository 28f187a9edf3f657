import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { ConfigError, DEFAULT_TEMPLATE, loadValues, renderTemplate, type OpensipsValues } from '../../src/cli/opensips-config.js';
import { REPO } from '../../src/devkit/paths.js';
import { Decimal } from '../../src/core/money/decimal.js';
import { eventually, type MoneyWorld } from '../helpers/money-world.js';
import { startPartnerWorld, type PartnerWorld } from '../helpers/partner-world.js';
import { SidecarProcess } from '../helpers/sidecar.js';
import { CREDENTIAL_MEMORY_MS } from '../../src/sidecar/auth/digest-replay.js';

/**
 * The OpenSIPS script (opensips-config/) against the real sidecar: render it,
 * read back what it calls and what it reads, and replay the exact request
 * bodies it builds (taken from the script text, filled with sample values)
 * against real processes.
 */

const CLI = fileURLToPath(new URL('../../src/cli/opensips-config.js', import.meta.url));
const EXAMPLE_VALUES = join(REPO, 'opensips-config', 'values.example.json');
const TEMPLATE = readFileSync(DEFAULT_TEMPLATE, 'utf8');
const exampleFile = (): Record<string, unknown> => JSON.parse(readFileSync(EXAMPLE_VALUES, 'utf8')) as Record<string, unknown>;
const render = (change: Record<string, unknown> = {}): { values: OpensipsValues; script: string } => {
  const values = loadValues({ ...exampleFile(), ...change });
  return { values, script: renderTemplate(TEMPLATE, values) };
};

// ---------------------------------------------------------------- script model

/** Route bodies by name ("main" for the unnamed request route), braces matched outside strings and comments. */
function routeBodies(script: string): Map<string, string> {
  const routes = new Map<string, string>();
  const header = /^(?:(failure_|onreply_|branch_)?route)(?:\[([A-Za-z0-9_]+)\])?\s*\{/gm;
  for (const match of script.matchAll(header)) {
    const [, kind, routeName] = match as unknown as [string, string | undefined, string | undefined];
    const name = routeName === undefined ? 'main' : `${kind ?? ''}${routeName}`;
    let depth = 0;
    let i = match.index + match[0].length - 1;
    const start = i + 1;
    for (; i < script.length; i++) {
      const c = script[i];
      if (c === '"') {
        for (i++; i < script.length && script[i] !== '"'; i++) if (script[i] === '\\') i++;
      } else if (c === '#') {
        while (i < script.length && script[i] !== '\n') i++;
      } else if (c === '{') {
        depth++;
      } else if (c === '}' && --depth === 0) {
        break;
      }
    }
    routes.set(name, script.slice(start, i));
  }
  return routes;
}

interface SidecarCall {
  path: string;
  /** The route that reads the answer; null for launch()ed calls. */
  resume: string | null;
  kind: 'sync' | 'async' | 'launch';
  /** The route whose text makes the call. */
  caller: string;
}

function sidecarCalls(script: string, sidecarUrl: string): SidecarCall[] {
  const calls: SidecarCall[] = [];
  for (const [caller, body] of routeBodies(script)) {
    const lines = body.split('\n');
    lines.forEach((line, i) => {
      const match = /rest_post\("([^"]+)"/.exec(line);
      if (match === null) return;
      assert.ok(match[1].startsWith(sidecarUrl), `${caller}: rest_post to ${match[1]}, not the sidecar`);
      const path = match[1].slice(sidecarUrl.length);
      if (line.includes('launch(')) calls.push({ path, resume: null, kind: 'launch', caller });
      else if (line.includes('async(')) calls.push({ path, resume: /\), ([a-z_]+), \d+\);/.exec(line)![1], kind: 'async', caller });
      else calls.push({ path, resume: /^\s*route\(([a-z_]+)\);/.exec(lines[i + 1])![1], kind: 'sync', caller });
    });
  }
  return calls;
}

/** Routes each route calls, by route(), t_on_failure(), dlg_on_*() or as a resume route. */
function routeGraph(script: string, calls: SidecarCall[]): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  for (const [name, body] of routeBodies(script)) {
    const targets = new Set<string>();
    for (const match of body.matchAll(/\broute\(([a-z_0-9]+)[,)]/g)) targets.add(match[1]);
    for (const match of body.matchAll(/t_on_failure\("([a-z_]+)"\)/g)) targets.add(`failure_${match[1]}`);
    for (const match of body.matchAll(/dlg_on_[a-z]+\("([a-z_]+)"\)/g)) targets.add(match[1]);
    for (const match of body.matchAll(/launch\(.*\), ([a-z_]+)(?:, "[^"]*")?\);/g)) targets.add(match[1]);
    for (const call of calls) if (call.caller === name && call.resume !== null) targets.add(call.resume);
    graph.set(name, targets);
  }
  return graph;
}

function reachable(graph: Map<string, Set<string>>, from: string): Set<string> {
  const seen = new Set<string>([from]);
  const stack = [from];
  while (stack.length > 0) {
    for (const next of graph.get(stack.pop()!) ?? []) {
      if (!seen.has(next)) {
        seen.add(next);
        stack.push(next);
      }
    }
  }
  return seen;
}

/**
 * The `# BODY path` blocks: field assignments to $json(req), exactly as written. The first may start the body
 * from a part kept with the dialog (`$json(req) := $dlg_val(cdr);`, see partBlocks): field '' stands for the
 * whole object.
 */
interface BodyLine {
  field: string;
  op: '=' | ':=';
  expr: string;
}

/** The statements between `# <marker> <name>` and `# END <marker>`, in template order, comments and blank lines left out. */
function markedBlocks(script: string, marker: 'BODY' | 'PART'): [name: string, statements: string[]][] {
  return [...script.matchAll(new RegExp(`# ${marker} (\\S+)\\n([\\s\\S]*?)# END ${marker}`, 'g'))].map((match) => [
    match[1],
    match[2]
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('#')),
  ]);
}

/** Assignments to $json(<root>) (field '') and its fields; anything else in a block is an error. */
function fieldLines(block: string, root: string, statements: string[]): BodyLine[] {
  return statements.map((statement) => {
    const field = new RegExp(`^\\$json\\(${root}(\\/[a-z_]+)?\\) (=|:=) (.+);$`).exec(statement);
    assert.ok(field !== null, `${block}: only field assignments belong in a body block, found: ${statement}`);
    // (the RegExp's group types say string: an absent group is undefined all the same)
    const path = field[1] as string | undefined;
    return { field: path === undefined ? '' : path.slice(1), op: field[2] as '=' | ':=', expr: field[3] };
  });
}

function bodyBlocks(script: string): Map<string, BodyLine[]> {
  const blocks = new Map<string, BodyLine[]>();
  for (const [path, statements] of markedBlocks(script, 'BODY')) {
    assert.match(
      statements[0],
      /^\$json\(req\) := ("\{\}"|\$dlg_val\([a-z_]+\));$/,
      `body ${path} starts from an empty object or a kept part`,
    );
    assert.equal(statements.at(-1), '$var(sc_req) = $json(req);', `body ${path} ends in $var(sc_req)`);
    const lines = fieldLines(`body ${path}`, 'req', statements.slice(0, -1));
    const previous = blocks.get(path);
    if (previous !== undefined) assert.deepEqual(lines, previous, `the two ${path} bodies are built alike`);
    blocks.set(path, lines);
  }
  return blocks;
}

/**
 * The `# PART name` blocks: a body begun in one route and completed in others (the CDR: at admission, then at
 * each relay), kept with the dialog as $dlg_val(name), one value for all its fields. Their field assignments
 * in template order; the first starts from an empty object, the last stores the whole.
 */
function partBlocks(script: string): Map<string, BodyLine[]> {
  const parts = new Map<string, string[][]>();
  for (const [name, statements] of markedBlocks(script, 'PART')) parts.set(name, [...(parts.get(name) ?? []), statements]);
  return new Map(
    [...parts].map(([name, blocks]) => {
      assert.equal(blocks[0][0], `$json(${name}) := "{}";`, `part ${name} starts from an empty object`);
      const stored = `$dlg_val(${name}) = $json(${name});`;
      assert.equal(blocks.at(-1)!.at(-1), stored, `part ${name} ends stored with the dialog`);
      const statements = blocks.flat().filter((statement) => statement !== stored);
      return [name, fieldLines(`part ${name}`, name, statements)];
    }),
  );
}

/**
 * A body as OpenSIPS's json module builds it: `=` stores an integer value as
 * a number and anything else as a string, NULL removes the key, `:=` parses
 * JSON text. Every expression needs a sample value (null: absent).
 */
type Sample = string | number | null;

function buildBody(lines: BodyLine[], samples: Record<string, Sample>): Record<string, unknown> {
  let body: Record<string, unknown> = {};
  for (const { field, op, expr } of lines) {
    const literal = /^"(.*)"$/.exec(expr);
    assert.ok(literal !== null || Object.hasOwn(samples, expr), `no sample value for ${expr} (field ${field}): add it to the scenario`);
    const value = literal !== null ? literal[1] : samples[expr];
    if (field === '') body = JSON.parse(String(value)) as Record<string, unknown>;
    else if (value === null) delete body[field];
    else if (op === ':=') body[field] = JSON.parse(String(value));
    else body[field] = value;
  }
  return body;
}

/**
 * The `$avp(x) := $json(<root>/path)` and `$var(x) = $json(<root>/path)` assignments of a route: which answer
 * field feeds which AVP or script variable (paths may go into sub-objects).
 */
function avpsFromAnswer(routeBody: string, answer: Record<string, unknown>, root = 'res'): Record<string, Sample> {
  const avps: Record<string, Sample> = {};
  for (const match of routeBody.matchAll(/\$(avp|var)\(([a-z_]+)\) :?= \$json\(([a-z]+)\/([a-z_/]+)\);/g)) {
    if (match[3] !== root) continue;
    const value = at(answer, match[4]);
    avps[`$${match[1]}(${match[2]})`] =
      value === undefined || value === null ? null : typeof value === 'boolean' ? String(value) : (value as string | number);
  }
  return avps;
}

/** A json-module path (`auth/customer_trunk_id`) in an answer. */
function at(answer: unknown, path: string): unknown {
  let value = answer;
  for (const key of path.split('/'))
    value = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined;
  return value;
}

/** The answer paths a route reads ($json(res/…): a sidecar answer, read where it is). */
const jsonReads = (routeBody: string): string[] => [
  ...new Set([...routeBody.matchAll(/\$json\(res\/([a-z_/]+)\)/g)].map((match) => match[1])),
];

/**
 * Runs route[rfc3339] as OpenSIPS would: one statement per line, + - * / %
 * at one precedence level, left to right, integer division; string + joins;
 * `if ($var(a) != $var(b)) route(name);` runs the named route (an unset $var
 * compares as 0, as OpenSIPS reads it). `vars` are the process's $vars, which
 * OpenSIPS keeps from one message to the next: pass the same map to convert
 * instants in turn as one process does.
 */
function runRfc3339(routes: Map<string, string>, unix: number, vars = new Map<string, number | string>()): string {
  const operand = (token: string): number | string => {
    if (/^-?\d+$/.test(token)) return Number(token);
    if (token === '$param(1)') return unix;
    const string = /^"(.*)"$/.exec(token);
    if (string !== null) return string[1];
    const fill = /^\$\(var\(([a-z_]+)\)\{s\.fill\.left,0,(\d+)\}\)$/.exec(token);
    if (fill !== null) return String(vars.get(fill[1])).padStart(Number(fill[2]), '0');
    const variable = /^\$var\(([a-z_]+)\)$/.exec(token);
    assert.ok(variable !== null && vars.has(variable[1]), `rfc3339: unknown operand ${token}`);
    return vars.get(variable[1])!;
  };
  const evaluate = (expression: string): number | string => {
    const tokens = expression.match(/\$\([^)]*\)[^)]*\)|\$[a-z]+\([a-z_0-9]+\)|"[^"]*"|-?\d+|[-+*/%]/g)!;
    let value = operand(tokens[0]);
    for (let i = 1; i < tokens.length; i += 2) {
      const right = operand(tokens[i + 1]);
      if (typeof value === 'string') {
        assert.equal(tokens[i], '+', 'only + applies to strings');
        value += String(right);
        continue;
      }
      assert.equal(typeof right, 'number', `rfc3339: ${expression} adds a string to a number`);
      const r = right as number;
      value =
        tokens[i] === '+'
          ? value + r
          : tokens[i] === '-'
            ? value - r
            : tokens[i] === '*'
              ? value * r
              : tokens[i] === '/'
                ? Math.trunc(value / r)
                : value % r;
    }
    return value;
  };
  const assign = (statement: string): void => {
    const match = /^\$var\(([a-z_0-9]+)\) = (.+)$/.exec(statement.trim());
    assert.ok(match !== null, `rfc3339: unsupported statement ${statement}`);
    vars.set(match[1], evaluate(match[2]));
  };
  const run = (name: string): void => {
    const routeBody = routes.get(name);
    assert.ok(routeBody !== undefined, `rfc3339: no route[${name}]`);
    for (const raw of routeBody.split('\n')) runLine(raw.trim());
  };
  const runLine = (line: string): void => {
    if (line === '' || line.startsWith('#')) return;
    const call = /^if \(\$var\(([a-z_]+)\) != \$var\(([a-z_]+)\)\) route\(([a-z0-9_]+)\);$/.exec(line);
    if (call !== null) {
      if ((vars.get(call[1]) ?? 0) !== (vars.get(call[2]) ?? 0)) run(call[3]);
      return;
    }
    const branch = /^if \(\$var\(([a-z_]+)\) < (\d+)\) ([^;]+);(?: else ([^;]+);)?$/.exec(line) as
      [string, string, string, string, string | undefined] | null;
    if (branch !== null) {
      if ((vars.get(branch[1]) as number) < Number(branch[2])) assign(branch[3]);
      else if (branch[4] !== undefined) assign(branch[4]);
      return;
    }
    assert.ok(line.endsWith(';'), `rfc3339: ${line}`);
    assign(line.slice(0, -1));
  };
  run('rfc3339');
  return String(vars.get('rfc3339'));
}

// ---------------------------------------------------------------- samples

const md5 = (text: string): string => createHash('md5').update(text).digest('hex');

/** A REGISTER (or INVITE) Authorization header as a UA computes it for the fixture registration. */
function digestHeader(method: string, uri: string): string {
  const [username, realm, password, nonce, cnonce, nc] = [
    'acme_trunk_01',
    'sip.crazytel.com.au',
    's3cret',
    'bm9uY2UtZnJvbS1vcGVuc2lwcw',
    'c0ffee',
    '00000001',
  ];
  const response = md5(`${md5(`${username}:${realm}:${password}`)}:${nonce}:${nc}:${cnonce}:auth:${md5(`${method}:${uri}`)}`);
  return `Digest username="${username}", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${response}", algorithm=MD5, cnonce="${cnonce}", qop=auth, nc=${nc}`;
}

/** An INVITE from the fixture's customer CIDR (trunk 10) to an Australian mobile. */
const invite = (sourceIp = '203.0.113.77', callId = 'cfg-1@203.0.113.77'): Record<string, Sample> => ({
  $si: sourceIp,
  $ci: callId,
  $fU: '6125550100',
  $rU: '61400123456',
  $ru: 'sip:61400123456@203.0.113.5',
  '$hdr(From)': '"Alice \\"A\\" O\'Neil" <sip:6125550100@203.0.113.77>;tag=a1',
  '$hdr(To)': '<sip:61400123456@203.0.113.5>',
  '$hdr(P-Asserted-Identity)': '<sip:+61255500100@203.0.113.77>',
  '$hdr(P-Preferred-Identity)': null,
  '$hdr(Remote-Party-ID)': null,
  '$hdr(Privacy)': null,
  $DLG_did: '2a1.5',
  '$avp(auth_user)': null,
  '$avp(auth_realm)': null,
  '$avp(auth_header)': null,
  '$avp(auth_method)': null,
  '$avp(auth_uri)': null,
});

const firstAttempt = (): Record<string, Sample> => ({
  '$avp(attempt)': 1,
  '$avp(tried_carriers)': '[]',
  '$avp(tried_gateways)': '[]',
  '$avp(prev_carrier)': null,
  '$avp(prev_gateway)': null,
  '$avp(prev_code)': null,
});

// ---------------------------------------------------------------- rendering

describe('opensips-config: rendering', () => {
  it('renders the example values with no placeholder left and every value in place', () => {
    const { values, script } = render();
    assert.doesNotMatch(script, /\{\{|\}\}/);
    assert.match(script, /^# Sidecar: http:\/\/127\.0\.0\.1:8090 {3}REST mode: sync$/m);
    for (const listener of values.listeners)
      assert.match(script, new RegExp(`^socket=${listener.proto}:${listener.host.replaceAll('.', '\\.')}:${listener.port}$`, 'm'));
    assert.match(script, /^loadmodule "proto_tcp\.so"$/m, 'a TCP listener loads proto_tcp');
    assert.match(script, /^udp_workers=4$/m);
    assert.match(script, /^tcp_workers=4$/m);
    assert.match(script, /^mpath="\/usr\/lib\/x86_64-linux-gnu\/opensips\/modules\/"$/m);
    assert.match(script, /^log_level=3$/m);
    assert.match(script, /^loadmodule "db_sqlite\.so"$/m);
    assert.equal(script.split('"sqlite:///var/lib/opensips/drouting.db"').length - 1, 2, 'drouting and permissions read the same database');
    assert.match(script, /^modparam\("httpd", "ip", "127\.0\.0\.1"\)$/m);
    assert.match(script, /^modparam\("httpd", "port", 8888\)$/m);
    assert.match(script, /^modparam\("rest_client", "connection_timeout", 1\)$/m);
    assert.match(script, /^modparam\("rest_client", "curl_timeout", 1\)$/m);
    assert.match(script, /^modparam\("dialog", "default_timeout", 14400\)$/m);
    assert.match(script, /\$avp\(attempt\) >= 3\)/);
    assert.match(script, /\$var\(policy\) = "reject";/);
    assert.match(script, /\$var\(cps_limit\) = 5;/);
    assert.match(script, /\$var\(port_limit\) = 20;/);
    assert.match(script, /www_challenge\("sip\.crazytel\.com\.au", "auth", "MD5"\);/);
    assert.doesNotMatch(script, /async\(/, 'sync mode makes no async() call');
    for (const line of script.split('\n').filter((l) => l.includes('rest_post(')))
      assert.ok(line.includes('"http://127.0.0.1:8090/api/'), line);
  });

  it('every route the script names exists, and async mode never suspends where OpenSIPS forbids it', () => {
    for (const mode of ['sync', 'async']) {
      const { script } = render({
        rest_mode: mode,
        listeners: ['udp:[2001:db8::5]:5060'],
        sidecar_host: '::1',
        drouting_db_url: 'mysql://opensips:pw@127.0.0.1/opensips',
      });
      assert.match(script, /^socket=udp:\[2001:db8::5\]:5060$/m);
      assert.match(script, /^# no TCP listener/m);
      assert.doesNotMatch(script, /^tcp_workers/m);
      assert.match(script, /^loadmodule "db_mysql\.so"$/m);
      const calls = sidecarCalls(script, 'http://[::1]:8090');
      const routes = routeBodies(script);
      const graph = routeGraph(script, calls);
      for (const [from, targets] of graph)
        for (const target of targets) assert.ok(routes.has(target), `${from} names route ${target}, which does not exist`);
      // async() is allowed in request routes only: nothing the failure route reaches may use it.
      for (const name of reachable(graph, 'failure_carrier_failure'))
        assert.doesNotMatch(routes.get(name)!, /\basync\(/, `${name} is reachable from the failure route`);
      const suspended = calls.filter((call) => call.kind === 'async');
      if (mode === 'async') {
        assert.ok(suspended.length >= 2, 'call/decide and register/auth are asynchronous');
        for (const call of suspended)
          assert.match(routes.get(call.caller)!, new RegExp(`async\\(rest_post\\("[^"]+${call.path}", .*\\), ${call.resume}, 1\\);`));
      } else {
        assert.equal(suspended.length, 0);
      }
    }
  });

  it('keeps what crosses a sidecar call in AVPs when the request suspends (async), in $vars when it does not', () => {
    for (const mode of ['sync', 'async'] as const) {
      const values = loadValues({ ...exampleFile(), rest_mode: mode, decision_timing_log: true });
      const script = renderTemplate(TEMPLATE, values);
      const [other, used] = mode === 'async' ? ['var', 'avp'] : ['avp', 'var'];
      for (const name of ['sc_code', 'sc_body', 'decide_t0', 'start_ts']) {
        assert.match(script, new RegExp(`\\$${used}\\(${name}\\)`), `${mode}: ${name}`);
        // a $var does not survive a suspension: async mode must never read one the request set before it
        assert.doesNotMatch(script, new RegExp(`\\$${other}\\(${name}\\)`), `${mode}: ${name} only as $${used}`);
      }
      const decide = routeBodies(script).get('call_decide_ask')!;
      assert.match(decide, new RegExp(`rest_post\\([^\\n]*, \\$${used}\\(sc_body\\), , \\$${used}\\(sc_code\\)\\)`));
    }
    assert.throws(
      () => renderTemplate('route[x] {\n\t$x = {{KEPT}};\n}\n', loadValues(exampleFile())),
      /template line 2: .* needs a variable name/,
    );
  });

  it('sets each module parameter after loading its module, as OpenSIPS requires', () => {
    for (const url of ['sqlite:///var/lib/opensips/drouting.db', 'mysql://opensips:pw@127.0.0.1/opensips']) {
      const { script } = render({ drouting_db_url: url });
      const loaded = new Set<string>();
      for (const line of script.split('\n')) {
        const load = /^loadmodule "([a-z_]+)\.so"$/.exec(line);
        if (load !== null) loaded.add(load[1]);
        const param = /^modparam\("([a-z_]+)"/.exec(line);
        // OpenSIPS 3.6.8 refuses the file: "no module matching db_sqlite found" (seen when the spool's came first).
        if (param !== null) assert.ok(loaded.has(param[1]), `modparam for ${param[1]} before loadmodule "${param[1]}.so" (${url})`);
      }
      assert.ok(loaded.has('db_sqlite') && loaded.has('sqlops'), 'the spool needs both');
    }
  });

  it('times each INVITE to its decision only when decision_timing_log asks, from the INVITE to the answer route', () => {
    const off = render().script;
    assert.doesNotMatch(off, /decide_t0 :=|route\(decision_timing\);/, 'off by default: no clock read, no log line');
    for (const env of [{}, { OPENSIPS_CFG_DECISION_TIMING_LOG: 'true' }]) {
      const values = loadValues(Object.keys(env).length === 0 ? { ...exampleFile(), decision_timing_log: true } : exampleFile(), env);
      const routes = routeBodies(renderTemplate(TEMPLATE, values));
      const invite = routes.get('invite')!;
      // the clock is read before the first step that costs anything (the digest, the dialog) and before the request
      assert.ok(invite.indexOf('$var(decide_t0) = $Tsm;') < invite.indexOf('create_dialog('), invite);
      const answer = routes.get('call_decide_answer')!.trim();
      assert.ok(answer.startsWith('route(decision_timing);'), 'logged first thing in the answer route, whatever the answer');
      const timing = routes.get('decision_timing')!;
      assert.match(timing, /\$var\(decide_us\) = \$Tsm - \$var\(decide_t0\);/);
      assert.match(timing, /xlog\("L_NOTICE", "DECIDE-US \$var\(decide_us\) http=\$var\(sc_code\) \$ci\\n"\);/);
      assert.doesNotMatch(timing, /\$T[sS]\b/, 'one clock: $Ts and $Tsm disagree near a second boundary');
    }
  });

  it('logs to syslog at the facility syslog_facility names (LOCAL0 when left out), or to stderr without one', () => {
    assert.match(render().script, /^syslog_enabled=yes\nsyslog_facility=LOG_LOCAL0$/m);
    for (const [given, rendered] of [
      ['LOG_LOCAL3', 'LOG_LOCAL3'],
      ['local5', 'LOG_LOCAL5'],
      ['daemon', 'LOG_DAEMON'],
    ]) {
      assert.match(render({ syslog_facility: given }).script, new RegExp(`^syslog_facility=${rendered}$`, 'm'), given);
      const fromEnv = renderTemplate(TEMPLATE, loadValues(exampleFile(), { OPENSIPS_CFG_SYSLOG_FACILITY: given }));
      assert.match(fromEnv, new RegExp(`^syslog_facility=${rendered}$`, 'm'), `${given} from the environment`);
    }
    const stderr = render({ log_target: 'stderr', syslog_facility: 'LOG_LOCAL2' }).script;
    assert.match(stderr, /^stderror_enabled=yes\nsyslog_enabled=no$/m);
    assert.doesNotMatch(stderr, /^syslog_facility=/m);
  });

  it("caps each SIP socket's receive buffer at sip_receive_buffer_bytes (2 MiB when left out), refusing sizes out of range", () => {
    assert.match(render().script, /^maxbuffer=2097152$/m);
    assert.match(render({ sip_receive_buffer_bytes: 8_388_608 }).script, /^maxbuffer=8388608$/m);
    const fromEnv = renderTemplate(TEMPLATE, loadValues(exampleFile(), { OPENSIPS_CFG_SIP_RECEIVE_BUFFER_BYTES: '524288' }));
    assert.match(fromEnv, /^maxbuffer=524288$/m);
    for (const bad of [0, 65_535, 64 * 1024 * 1024 + 1, 1.5, '2MB'])
      assert.throws(() => render({ sip_receive_buffer_bytes: bad }), /sip_receive_buffer_bytes/, String(bad));
  });

  it('answers credentials the sidecar has already taken with a fresh challenge, and keeps nonces no longer than it remembers them', () => {
    const { script } = render();
    const routes = routeBodies(script);
    // OpenSIPS's one-use nonce check never runs with the placeholder password: the sidecar's is the only one.
    assert.match(routes.get('call_refused')!, /reason_code\) == "credentials_reused"\) \{\s*proxy_challenge\(/);
    assert.match(routes.get('register_answer')!, /reason_code\) == "credentials_reused"\) \{\s*(#[^\n]*\s*)?www_challenge\(/);
    // So a retransmission is absorbed by the transaction, not asked again (refused as a reuse): REGISTER as INVITE.
    const register = routes.get('register')!;
    assert.ok(register.indexOf('t_newtran();') >= 0 && register.indexOf('t_newtran();') < register.indexOf('route(digest_body)'));
    const nonceExpire = Number(/modparam\("auth", "nonce_expire", (\d+)\)/.exec(script)?.[1]);
    assert.ok(nonceExpire > 0 && nonceExpire * 1000 <= CREDENTIAL_MEMORY_MS, `nonce_expire ${nonceExpire} s outlives the sidecar's memory`);
  });

  it('answers 503 All Routes Busy, not the 404 of a missing route, when the carriers left were all skipped for their limits', () => {
    const routes = routeBodies(render().script);
    const answer = routes.get('route_answer')!;
    // The refusal branch (no carrier left), before any relay: a skip is the only way carriers are tried by then.
    const refused = answer.slice(answer.indexOf('if ($json(res/route/allowed) != "true")'), answer.indexOf('$avp(carrier) :='));
    assert.match(
      refused,
      /route\(release\);\s*if \(\$avp\(tried_carriers\) != NULL\) \{[^}]*send_reply\(503, "All Routes Busy"\);\s*exit;\s*\}\s*send_reply\(\$json\(res\/route\/reject_code\)/,
    );
    // The same words as when the attempts run out on skipped carriers, and the skips are what start the list.
    assert.match(answer, /\$avp\(attempt\) >= \d+\) \{[\s\S]*?send_reply\(503, "All Routes Busy"\)/);
    assert.match(routes.get('mark_tried')!, /\$avp\(tried_carriers\) := "\[\]";/);
  });

  it("checks a carrier's ports before its CPS: a carrier skipped for its ports takes no slot of the second", () => {
    const limits = routeBodies(render().script).get('carrier_limits')!;
    const ports = limits.indexOf('get_profile_size("carrier_calls"');
    assert.ok(ports >= 0 && ports < limits.indexOf('rl_check("cps_carr_'), limits);
    assert.match(limits, /\$var\(carrier_ok\) = 0;\s*return;\s*\}\s*\}\s*if \(\$var\(carrier_cps\) > 0\)/);
  });

  it("reroutes with the caller number as sent when call/auth found none usable in it, for the carriers' ANI rules", () => {
    const body = routeBodies(render().script).get('reroute_body')!;
    assert.match(
      body,
      /\$var\(route_ani\) = \$avp\(ani\);\s*if \(\$avp\(ani\) == NULL \|\| \$avp\(ani\) == ""\)\s*\$var\(route_ani\) = \$fU;\s*# BODY/,
    );
    assert.match(body, /\$json\(req\/ani\) = \$var\(route_ani\);/);
  });

  it('computes UTC timestamps in the script itself, whatever the time zone', () => {
    const routes = routeBodies(render().script);
    const iso = (unix: number): string => new Date(unix * 1000).toISOString().replace('.000Z', 'Z');
    const samples = [0, 951_782_400 /* 2000-02-29 */, 1_700_000_000, 1_767_225_599 /* 2025-12-31T23:59:59 */, 2_147_483_647];
    for (let i = 0; i < 200; i++) samples.push(946_684_800 + Math.floor(Math.random() * 1_200_000_000));
    // each in a fresh process, where the date is worked out
    for (const unix of samples) assert.equal(runRfc3339(routes, unix), iso(unix), `unix ${unix}`);
    // and in turn in one process, which keeps the last date: the same day again, the next one, midnight, going back
    const oneProcess = new Map<string, number | string>();
    const turns = [1_767_225_599, 1_767_225_600, 1_767_225_601, 1_767_139_200, 1_767_225_599, 0, 86_399, 86_400, 951_782_399, 951_782_400];
    for (let i = 0; i < 300; i++) turns.push(1_765_000_000 + Math.floor(Math.random() * 3 * 86_400));
    for (const unix of turns) assert.equal(runRfc3339(routes, unix, oneProcess), iso(unix), `unix ${unix}`);
  });
});

describe('opensips-config: render command refuses bad input', () => {
  const dir = mkdtempSync(join(tmpdir(), 'opensips-config-'));
  const run = (values: Record<string, unknown> | null, options: { env?: Record<string, string>; template?: string } = {}) => {
    const valuesFile = join(dir, `values-${Math.random().toString(36).slice(2)}.json`);
    const out = join(dir, `out-${Math.random().toString(36).slice(2)}.cfg`);
    if (values !== null) writeFileSync(valuesFile, JSON.stringify(values));
    const args = [
      CLI,
      ...(values === null ? [] : ['--values', valuesFile]),
      '--out',
      out,
      ...(options.template === undefined ? [] : ['--template', options.template]),
    ];
    const result = spawnSync(process.execPath, args, { encoding: 'utf8', env: { PATH: process.env.PATH, ...options.env } });
    return { status: result.status, stderr: result.stderr, stdout: result.stdout, out, written: existsSync(out) };
  };
  const without = (key: string): Record<string, unknown> => {
    const values = exampleFile();
    delete values[key];
    return values;
  };

  it('renders the example values from the command line', () => {
    const result = run(exampleFile());
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /rendered .* \(sidecar http:\/\/127\.0\.0\.1:8090, sync REST calls\)/);
    assert.doesNotMatch(readFileSync(result.out, 'utf8'), /\{\{/);
  });

  it('takes values from the environment, over the file', () => {
    const result = run(without('sidecar_port'), {
      env: { OPENSIPS_CFG_SIDECAR_PORT: '9191', OPENSIPS_CFG_LISTENERS: 'udp:198.51.100.7:5080' },
    });
    assert.equal(result.status, 0, result.stderr);
    const script = readFileSync(result.out, 'utf8');
    assert.match(script, /"http:\/\/127\.0\.0\.1:9191\/api\/opensips\/call\/decide"/);
    assert.match(script, /^socket=udp:198\.51\.100\.7:5080$/m);
    assert.doesNotMatch(script, /socket=udp:203\.0\.113\.5/);
  });

  const refusals: [name: string, values: () => Record<string, unknown> | null, message: RegExp, env?: Record<string, string>][] = [
    [
      'a missing value',
      () => without('sidecar_port'),
      /missing value sidecar_port \(set in the values file or as OPENSIPS_CFG_SIDECAR_PORT\)/,
    ],
    ['no values at all', () => null, /missing values sidecar_host, sidecar_port, listeners/],
    ['an unknown value', () => ({ ...exampleFile(), sidcar_port: 8090 }), /unknown value "sidcar_port"/],
    [
      'an unknown environment variable',
      () => exampleFile(),
      /unknown environment variable OPENSIPS_CFG_SIDECAR_PROT/,
      { OPENSIPS_CFG_SIDECAR_PROT: '1' },
    ],
    [
      'a bad sidecar address',
      () => ({ ...exampleFile(), sidecar_host: '256.1.1.1' }),
      /sidecar_host must be an IPv4 or IPv6 address, got "256\.1\.1\.1"/,
    ],
    [
      'a host name for the sidecar',
      () => ({ ...exampleFile(), sidecar_host: 'localhost' }),
      /sidecar_host must be an IPv4 or IPv6 address/,
    ],
    [
      'a malformed listener',
      () => ({ ...exampleFile(), listeners: ['203.0.113.5:5060'] }),
      /listeners\[0\] must look like udp:203\.0\.113\.5:5060/,
    ],
    ['an unbracketed IPv6 listener', () => ({ ...exampleFile(), listeners: ['udp:2001:db8::5:5060'] }), /listeners\[0\] must look like/],
    ['a wildcard listener', () => ({ ...exampleFile(), listeners: ['udp:0.0.0.0:5060'] }), /bind a real address, not 0\.0\.0\.0/],
    ['a port out of range', () => ({ ...exampleFile(), mi_http_port: 70000 }), /mi_http_port must be a whole number from 1 to 65535/],
    ['a fractional timeout', () => ({ ...exampleFile(), rest_curl_timeout: 0.5 }), /rest_curl_timeout must be a whole number from 1 to 60/],
    [
      'a connect timeout above the transfer timeout',
      () => ({ ...exampleFile(), rest_connection_timeout: 3, rest_curl_timeout: 2 }),
      /rest_connection_timeout must not exceed rest_curl_timeout/,
    ],
    ['an unknown REST mode', () => ({ ...exampleFile(), rest_mode: 'parallel' }), /rest_mode must be one of sync, async/],
    [
      'an unknown degraded policy',
      () => ({ ...exampleFile(), admission_degraded_policy: 'maybe' }),
      /admission_degraded_policy must be one of allow, reject/,
    ],
    [
      'a database URL without a driver',
      () => ({ ...exampleFile(), drouting_db_url: '/var/lib/opensips/drouting.db' }),
      /drouting_db_url must be sqlite:\/\/\/absolute\/path\.db/,
    ],
    [
      'a timing switch that is not a boolean',
      () => ({ ...exampleFile(), decision_timing_log: 'yes' }),
      /decision_timing_log must be true or false/,
    ],
    [
      'a syslog facility OpenSIPS does not know',
      () => ({ ...exampleFile(), syslog_facility: 'LOCAL8' }),
      /syslog_facility must be a syslog facility such as LOG_LOCAL0/,
    ],
    [
      'an unknown digest algorithm',
      () => ({ ...exampleFile(), digest_algorithms: 'MD5,SHA-1' }),
      /digest_algorithms must be a comma-separated list/,
    ],
  ];
  for (const [name, values, message, env] of refusals) {
    it(`refuses ${name}, writing nothing`, () => {
      const result = run(values(), { env });
      assert.equal(result.status, 2, result.stdout);
      assert.match(result.stderr, /^opensips-config: /);
      assert.match(result.stderr, message);
      assert.equal(result.written, false);
    });
  }

  it('refuses a placeholder it does not know, naming its line', () => {
    const template = join(dir, 'bad.tmpl');
    writeFileSync(template, `${TEMPLATE}\n# {{SIDECAR_URL}} and {{NOT_A_THING}}\n`);
    const result = run(exampleFile(), { template });
    assert.equal(result.status, 2);
    assert.match(
      result.stderr,
      new RegExp(`template line ${TEMPLATE.split('\n').length + 1}: unknown placeholder \\{\\{NOT_A_THING\\}\\}`),
    );
    assert.equal(result.written, false);
  });

  it('renders the reason codes the script compares from the catalogue, and refuses one it does not have', () => {
    const values = loadValues(exampleFile());
    assert.equal(
      renderTemplate('$json(res/reason_code) == "{{REASON_CODE no_route}}"\n', values),
      '$json(res/reason_code) == "no_route"\n',
    );
    for (const code of ['source_ip_not_authorized', 'invalid_json', '']) {
      assert.throws(
        () => renderTemplate(`if ($json(res/reason_code) == "{{REASON_CODE ${code}}}") exit;\n`, values),
        (error: unknown) =>
          error instanceof ConfigError && /template line 1: .* names no call refusal of the catalogue/.test(error.message),
        code,
      );
    }
  });

  it('refuses a sidecar call whose answer route does not exist, or that does not stand alone', () => {
    assert.throws(
      () => renderTemplate('route {\n\t{{SIDECAR_POST /api/opensips/call/auth nowhere}}\n}\n', loadValues(exampleFile())),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, /template line 2: SIDECAR_POST resumes in route\[nowhere\], which the template does not define/);
        return true;
      },
    );
    assert.throws(
      () => renderTemplate('route[x] {\n\tif (1) {{SIDECAR_POST /api/x x}}\n}\n', loadValues(exampleFile())),
      /must stand alone on its line/,
    );
    assert.throws(
      () => renderTemplate('route[x] {\n\t# {{SIDECAR_URL}\n}\n', loadValues(exampleFile())),
      /template line 2: unbalanced placeholder braces/,
    );
  });
});

// ---------------------------------------------------------------- against the sidecar

// ---------------------------------------------------------------- against real processes

/**
 * The script's requests against a real node and control plane (the money path needs a centre that
 * leases credit), with the fixture world in its store.
 */
describe('opensips-config: the script against real processes', () => {
  const { script } = render();
  const routes = routeBodies(script);
  const calls = sidecarCalls(script, 'http://127.0.0.1:8090');
  const bodies = bodyBlocks(script);
  let world: MoneyWorld;
  let node: SidecarProcess;
  /** Every answer seen per path, to check the fields the script reads. */
  const answers = new Map<string, Record<string, unknown>[]>();

  const ask = async (path: string, samples: Record<string, Sample>): Promise<{ status: number; body: any }> => {
    const lines = bodies.get(path);
    assert.ok(lines !== undefined, `the script builds no body for ${path}`);
    const answer = await node.post(path, buildBody(lines, samples));
    if (answer.body !== null && typeof answer.body === 'object') answers.set(path, [...(answers.get(path) ?? []), answer.body]);
    return answer;
  };
  const parts = partBlocks(script);
  const rfc3339 = (unix: number): string => runRfc3339(routes, unix);

  /** A partner product on trunk 10 with this access number, and a caller with a live translation to it. */
  const ACCESS_NUMBER = '61280000000';
  const RETAIL_CALLER = '61255500100';
  let partner: PartnerWorld['partner'];
  let retailCode: string;

  before(async () => {
    const started = await startPartnerWorld(ACCESS_NUMBER, 1);
    ({ world, partner } = started);
    node = world.sidecars[0];
    const credit = await world.control.post('/api/balances/customer/1/balance/credit', {
      amount: '50.00',
      description: 'opensips-config test',
    });
    assert.equal(credit.status, 200, JSON.stringify(credit.body));
    // The access-number call's answers carry the retail account, which the script keeps for the CDR.
    const code = (retailCode = await started.account(5));
    const translation = await partner('setup_call', {
      a_number: `+${RETAIL_CALLER}`,
      b_number: '+61400123456',
      access_number: `+${ACCESS_NUMBER}`,
      account_number: code,
      ttl: 3600,
    });
    assert.equal(translation.status, 200, translation.text);
    assert.equal((await world.control.send('PUT', '/api/opensips-nodes/1', { sidecar_address: node.url })).status, 200);
    const sync = await world.control.post('/api/opensips/routing/sync', {});
    assert.ok(
      (sync.body.sidecar_results as { success: boolean }[]).every((result) => result.success),
      JSON.stringify(sync.body),
    );
  });
  after(() => world.stop());

  /** call/decide as the script sends it, and what the script keeps of an allowed answer. */
  const decide = async (samples: Record<string, Sample>): Promise<{ body: any; state: Record<string, Sample> }> => {
    const answer = await ask('/api/opensips/call/decide', samples);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    const state = { ...samples, ...firstAttempt() };
    if (answer.body.allowed !== true) return { body: answer.body, state };
    Object.assign(state, avpsFromAnswer(routes.get('call_decide_answer')!, answer.body));
    Object.assign(state, avpsFromAnswer(routes.get('route_answer')!, answer.body));
    return { body: answer.body, state };
  };

  it('calls only endpoints the sidecar has, and builds a body for each', async () => {
    const paths = [...new Set(calls.map((call) => call.path))].sort();
    assert.deepEqual(paths, [
      '/api/cdrs/ingest',
      '/api/opensips/call/decide',
      '/api/opensips/call/release',
      '/api/opensips/call/reroute',
      '/api/opensips/register/auth',
    ]);
    assert.deepEqual([...bodies.keys()].sort(), paths);
    for (const path of paths) {
      const answer = await node.post(path, {});
      assert.notEqual(answer.status, 404, `${path}: ${JSON.stringify(answer.body)}`);
      assert.notEqual(answer.status, 405, path);
    }
  });

  it('call/decide: an INVITE from a customer address is identified, admitted and routed in one request', async () => {
    const { body, state } = await decide(invite('203.0.113.77', 'cfg-1@203.0.113.77'));
    assert.equal(body.allowed, true, JSON.stringify(body));
    assert.equal(body.stage, 'route');
    assert.equal(state['$avp(ctid)'], 10);
    assert.equal(state['$avp(ani)'], '6125550100');
    assert.equal(state['$avp(dnis)'], '61400123456');
    assert.equal(state['$var(cps_limit)'], 10);
    assert.equal(state['$var(port_limit)'], 30);
    assert.ok(Number.isInteger(state['$var(max_duration)']) && (state['$var(max_duration)'] as number) > 0, 'the script caps the dialog');
    assert.equal(state['$avp(carrier)'], 21);
    assert.equal(state['$avp(gateway)'], 211);
    assert.equal(state['$var(dest)'], 'sip:61400123456@[2001:db8::50]:5080');
  });

  it('call/decide: an unknown source gets exactly the refusal the script answers with a digest challenge', async () => {
    const { body } = await decide(invite('198.18.0.1', 'cfg-2@198.18.0.1'));
    assert.equal(body.allowed, false);
    assert.equal(body.stage, 'auth');
    const refusal = routes.get('call_refused')!;
    assert.match(refusal, /\$json\(res\/stage\) == "auth"/);
    const condition = /\$json\(res\/reason_code\) == "([^"]+)"/.exec(refusal);
    assert.ok(condition !== null);
    assert.equal(body.reason_code, condition[1]);
  });

  it('register/auth: the REGISTER body is verified; a wrong response is refused', async () => {
    const uri = 'sip:sip.crazytel.com.au';
    const register = {
      $si: '198.18.0.1',
      $aU: 'acme_trunk_01',
      $ar: 'sip.crazytel.com.au',
      $adu: uri,
      $rm: 'REGISTER',
      '$var(auth_header)': digestHeader('REGISTER', uri),
    };
    const allowed = await ask('/api/opensips/register/auth', register);
    assert.deepEqual(allowed.body, { allowed: true, customer_trunk_id: 10 });
    const refused = await ask('/api/opensips/register/auth', {
      ...register,
      '$var(auth_header)': digestHeader('REGISTER', uri).replace('c0ffee', 'decade'),
    });
    assert.equal(refused.body.allowed, false);
    assert.equal(refused.body.reject_code, 403);
  });

  it('a registered trunk: the INVITE digest is verified and the call decided in the same request', async () => {
    const uri = 'sip:61400123456@203.0.113.5';
    const credentials = {
      '$avp(auth_user)': 'acme_trunk_01',
      '$avp(auth_realm)': 'sip.crazytel.com.au',
      '$avp(auth_header)': digestHeader('INVITE', uri),
      '$avp(auth_method)': 'INVITE',
      '$avp(auth_uri)': uri,
    };
    const { body } = await decide({ ...invite('198.18.0.1', 'cfg-3@198.18.0.1'), ...credentials });
    assert.equal(body.allowed, true, JSON.stringify(body));
    assert.deepEqual(body.digest, { allowed: true, customer_trunk_id: 10 });
    assert.equal(body.auth.customer_trunk_id, 10);
    const wrong = await decide({
      ...invite('198.18.0.1', 'cfg-4@198.18.0.1'),
      ...credentials,
      '$avp(auth_header)': digestHeader('INVITE', uri).replace('c0ffee', 'decade'),
    });
    assert.equal(wrong.body.allowed, false);
    assert.equal(wrong.body.stage, 'digest');
    assert.equal(wrong.body.admit, null, 'nothing is reserved for a caller who did not prove who they are');
  });

  it('call/reroute: failover rules and the next carriers, with the tried carriers and gateways', async () => {
    const { state } = await decide(invite('203.0.113.77', 'cfg-5@203.0.113.77'));
    assert.equal(state['$avp(carrier)'], 21);
    // The failure route's bookkeeping after carrier 21 answered 503 (as the script serialises its lists).
    Object.assign(state, {
      // route[reroute_body]'s caller number: call/auth's, usable here.
      '$var(route_ani)': state['$avp(ani)'],
      '$avp(attempt)': 2,
      '$avp(tried_carriers)': '[ 21 ]',
      '$avp(tried_gateways)': '[ 211 ]',
      '$avp(prev_carrier)': 21,
      '$avp(prev_gateway)': 211,
      '$avp(prev_code)': 503,
      '$avp(failure_code)': 503,
    });
    const second = await ask('/api/opensips/call/reroute', state);
    assert.equal(second.body.action, 'retry_next', JSON.stringify(second.body));
    assert.match(routes.get('reroute_answer')!, /\$json\(res\/action\) != "retry_next"/);
    assert.equal(second.body.route.allowed, true);
    Object.assign(state, avpsFromAnswer(routes.get('route_answer')!, second.body));
    assert.equal(state['$avp(carrier)'], 20);

    const busy = await ask('/api/opensips/call/reroute', {
      ...state,
      '$avp(attempt)': 3,
      '$avp(prev_carrier)': 20,
      '$avp(prev_code)': 486,
      '$avp(failure_code)': 486,
    });
    assert.deepEqual(busy.body, { allowed: false, action: 'return_to_customer', route: null });

    // A carrier skipped at its limits: no failure, so no rule; nothing left to try.
    const none = await ask('/api/opensips/call/reroute', {
      ...state,
      '$avp(attempt)': 3,
      '$avp(tried_carriers)': '[ 21, 20 ]',
      '$avp(tried_gateways)': `[ 211, ${String(state['$avp(gateway)'])} ]`,
      '$avp(failure_code)': null,
    });
    assert.deepEqual(none.body, {
      allowed: false,
      action: 'retry_next',
      route: { allowed: false, customer_trunk_id: 10, reject_code: 404, reject_reason: 'no route available', reason_code: 'no_route' },
    });
  });

  /**
   * What the CDR's body is built from for a call decided into `state`, started at `start` (unix seconds), answered
   * at `answer` (null: not), ended at `end`: the part kept with the dialog (route[store_call_vals] at admission,
   * route[relay_carrier] at the relay), then what route[cdr_answered] or route[cdr_unanswered] and
   * route[cdr_send] put in their variables.
   */
  const cdrSamples = (
    callId: string,
    state: Record<string, Sample>,
    call: { start: number; answer: number | null; end: number; code: number; ani?: Sample },
  ): Record<string, Sample> => {
    const kept = buildBody(parts.get('cdr')!, {
      $ci: callId,
      '$avp(ctid)': state['$avp(ctid)'],
      '$var(cdr_ani)': call.ani ?? state['$avp(ani)'],
      '$avp(dnis)': state['$avp(dnis)'],
      '$var(rfc3339)': rfc3339(call.start),
      '$var(retail)': state['$var(retail)'] ?? null,
      '$avp(sell_deck)': state['$avp(sell_deck)'] ?? null,
      '$avp(carrier)': state['$avp(carrier)'],
      '$avp(gateway)': state['$avp(gateway)'],
    });
    return {
      '$dlg_val(cdr)': JSON.stringify(kept),
      '$var(c_answer_time)': call.answer === null ? null : rfc3339(call.answer),
      '$var(rfc3339)': rfc3339(call.end),
      '$var(c_duration)': call.answer === null ? 0 : call.end - call.answer,
      '$var(c_code)': call.code,
    };
  };

  it('call/decide then cdrs/ingest: an answered call is admitted, capped, rated and reconciled', async () => {
    const { state } = await decide(invite('203.0.113.77', 'cfg-money-1@203.0.113.77'));
    const start = Math.floor(Date.now() / 1000) - 120;
    const answer = start + 5;
    const end = answer + 73;
    const ingest = await ask('/api/cdrs/ingest', cdrSamples('cfg-money-1@203.0.113.77', state, { start, answer, end, code: 200 }));
    assert.equal(ingest.status, 201, JSON.stringify(ingest.body));
    for (const field of ['cdr_id', 'customer_cost', 'customer_currency', 'vendor_cost', 'vendor_currency', 'reconciled', 'adjustment'])
      assert.ok(field in ingest.body, field);
    assert.equal(ingest.body.reconciled, true);
    assert.match(
      routes.get('cdr_report')!,
      new RegExp(`\\$var\\(cdr_code\\) != ${ingest.status}\\b`),
      'the report route takes this answer as delivered',
    );
  });

  it('cdrs/ingest: an unanswered call from a withheld number (answer_time left out) closes its reservation', async () => {
    const { state } = await decide(invite('203.0.113.77', 'cfg-money-2@203.0.113.77'));
    const withheld = /\$avp\(ani\) == ""\)\s*\$var\(cdr_ani\) = "([^"]*)";/.exec(routes.get('store_call_vals')!);
    assert.ok(withheld !== null, 'the script records a withheld caller with a stand-in number');
    const start = Math.floor(Date.now() / 1000) - 30;
    const ingest = await ask(
      '/api/cdrs/ingest',
      cdrSamples('cfg-money-2@203.0.113.77', state, { start, answer: null, end: start + 20, code: 486, ani: withheld[1] }),
    );
    assert.equal(ingest.status, 201, JSON.stringify(ingest.body));
    assert.equal(ingest.body.reconciled, true);
  });

  it('call/decide then cdrs/ingest: a call to an access number keeps its retail account for the CDR, which bills it', async () => {
    const { body, state } = await decide({
      ...invite('203.0.113.77', 'cfg-retail-1@203.0.113.77'),
      $rU: ACCESS_NUMBER,
      $ru: `sip:${ACCESS_NUMBER}@203.0.113.5`,
      '$hdr(To)': `<sip:${ACCESS_NUMBER}@203.0.113.5>`,
      $fU: RETAIL_CALLER,
      '$hdr(From)': `<sip:${RETAIL_CALLER}@203.0.113.77>;tag=r1`,
      '$hdr(P-Asserted-Identity)': `<sip:${RETAIL_CALLER}@203.0.113.77>`,
    });
    assert.equal(body.allowed, true, JSON.stringify(body));
    assert.equal(state['$avp(dnis)'], '61400123456', 'routed to the translated number');
    assert.ok(Number.isSafeInteger(state['$var(retail)']), 'the script keeps the retail account');
    assert.deepEqual(
      parts.get('cdr')!.find((line) => line.field === 'retail_account_id'),
      { field: 'retail_account_id', op: '=', expr: '$var(retail)' },
      'the CDR kept with the dialog names the retail account',
    );
    // And the product's sell deck (the fixture product names deck 1), which rates it.
    assert.equal(state['$avp(sell_deck)'], 1, "the script keeps the product's sell deck");
    assert.deepEqual(
      parts.get('cdr')!.find((line) => line.field === 'customer_rate_deck_id'),
      { field: 'customer_rate_deck_id', op: '=', expr: '$avp(sell_deck)' },
      'the CDR kept with the dialog names the sell deck',
    );
    // Released before its CDR comes (the reservation could also have expired): the CDR's own field says whose it is.
    assert.equal((await ask('/api/opensips/call/release', { $ci: 'cfg-retail-1@203.0.113.77' })).body.released, true);
    const start = Math.floor(Date.now() / 1000) - 60;
    const ingest = await ask(
      '/api/cdrs/ingest',
      cdrSamples('cfg-retail-1@203.0.113.77', state, { start, answer: start + 2, end: start + 32, code: 200 }),
    );
    assert.equal(ingest.status, 201, JSON.stringify(ingest.body));
    // Settled to the retail account, not the product trunk's own: its balance is down by exactly the cost.
    await eventually(async () => {
      const balance = await partner('get_balance', { account: retailCode });
      const shown = /"total_balance":(-?[0-9.]+)/.exec(balance.text)![1];
      assert.ok(
        new Decimal(shown).equals(new Decimal(5).minus(ingest.body.customer_cost as string)),
        `${shown}: 5 less ${ingest.body.customer_cost}`,
      );
    }, 20_000);
  });

  it('call/release: a call the node refuses at its own limits gives its reservation back', async () => {
    await decide(invite('203.0.113.77', 'cfg-money-3@203.0.113.77'));
    assert.match(routes.get('customer_limits')!, /route\(release\);\s*send_reply\(503, "CPS Limit Exceeded"\)/);
    assert.match(routes.get('customer_limits')!, /route\(release\);\s*send_reply\(503, "Channel Limit Reached"\)/);
    const release = await ask('/api/opensips/call/release', { $ci: 'cfg-money-3@203.0.113.77' });
    assert.equal(release.status, 200, JSON.stringify(release.body));
    assert.equal(release.body.released, true);
    assert.match(routes.get('release_report')!, new RegExp(`\\$var\\(release_code\\) != ${release.status}\\b`));
    const again = await ask('/api/opensips/call/release', { $ci: 'cfg-money-3@203.0.113.77' });
    assert.equal(again.body.released, false);
  });

  it('call/decide: an admission refusal carries what the script relays to the caller', async () => {
    // A number the sell deck does not price is refused by admission.
    const { body } = await decide({ ...invite('203.0.113.77', 'cfg-money-4@203.0.113.77'), $rU: '4420712345678' });
    assert.equal(body.allowed, false);
    assert.equal(body.stage, 'admit');
    assert.equal(typeof body.reject_code, 'number');
    assert.equal(typeof body.reject_reason, 'string');
    assert.equal(body.route, null);
  });

  it('spools a CDR or release the sidecar does not take, also when the connection is refused', () => {
    // Synchronous: rest_client sets the code to 0 when nothing came back (refused, timed out), and the report
    // route, run right after, spools whatever was not taken. No launch(): a refused launch() never ran its
    // report route, and each one cost a curl handle and two scans of the reactor (docs/performance-log.md).
    assert.doesNotMatch(script, /^\s*launch\(/m);
    for (const [route, code, report] of [
      ['cdr_send', 'cdr_code', 'cdr_report'],
      ['release', 'release_code', 'release_report'],
    ] as const) {
      const body = routes.get(route)!;
      assert.match(
        body,
        new RegExp(`\\$var\\(${code}\\) = 0;\\s*rest_post\\([^\\n]*, \\$var\\(${code}\\)\\);\\s*route\\(${report}\\);`),
        `${route} resets the code, posts, then reports`,
      );
    }
    assert.match(
      routes.get('cdr_report')!,
      /if \(\$var\(cdr_code\) != 201 && \$var\(cdr_code\) != 200\)\s*route\(spool, "cdr", \$var\(sc_req\)\);/,
    );
    assert.match(routes.get('release_report')!, /if \(\$var\(release_code\) != 200\)\s*route\(spool, "release", \$var\(sc_req\)\);/);
    assert.match(script, /^modparam\("sqlops", "db_url", "sqlite:\/\/\/var\/lib\/opensips\/spool\.db"\)$/m);
  });

  it('reads only fields the answers carry, and reads answers only in the routes that receive them', () => {
    const resumeRoutes = new Map(calls.filter((call) => call.resume !== null).map((call) => [call.resume!, call.path]));
    const graph = routeGraph(script, calls);
    /**
     * The answers a route reads: its own as a resume route, or those of the resume routes that call it (route_answer
     * reads the route decision inside call/decide's answer and inside call/reroute's). None: it receives no answer.
     */
    const answersOf = (name: string): string[] => {
      const own = resumeRoutes.get(name);
      if (own !== undefined) return [own];
      const callers = [...graph].filter(([, targets]) => targets.has(name)).map(([caller]) => caller);
      const paths = callers.map((caller) => resumeRoutes.get(caller));
      return paths.every((path) => path !== undefined) ? [...new Set(paths)] : [];
    };
    const has = (seen: unknown[], path: string): boolean => seen.some((answer) => at(answer, path) !== undefined);
    for (const [name, body] of routes) {
      const reads = jsonReads(body);
      if (reads.length === 0) continue;
      const paths = answersOf(name);
      assert.ok(paths.length > 0, `route ${name} reads $json(res/…) but is reached where no sidecar answer is`);
      // (one of them is enough: a call/decide answer refused at its route stage never reaches route_answer's refusal)
      for (const path of paths) assert.ok((answers.get(path) ?? []).length > 0, `no ${path} answer was seen`);
      const seen = paths.flatMap((path) => answers.get(path)!);
      for (const field of reads) assert.ok(has(seen, field), `route ${name} reads ${field}, which no ${paths.join(' or ')} answer carries`);
    }
    assert.deepEqual(answersOf('route_answer').sort(), ['/api/opensips/call/decide', '/api/opensips/call/reroute']);
  });
});
