/**
 * Writes docs/performance.md from the newest result of each bench in bench/results/ (make perf-doc).
 * The page is generated: the figures, the command and the machine that made each of them. What was
 * tried, and why the code is as it is, is in docs/performance-log.md, by hand.
 *
 *   node dist/bench/report.js [--out docs/performance.md]
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { benchArgs } from './bench-args.js';
import { REPO } from '../src/devkit/paths.js';
import { againstFloor, newestResults, type SavedResult } from './results.js';

interface Row {
  scenario: string;
  achievedRate?: number;
  p50?: number;
  p99?: number;
  p999?: number;
  max?: number;
  errors?: number;
  cpuMicrosPerRequest?: number;
  loopMicrosPerRequest?: number;
  p50_vs_floor_us?: number;
  p99_ratio?: number;
  throughput_ratio?: number;
}

/** What each bench measures and how, in the order the page shows them. */
const BENCHES: { kind: string; title: string; what: string }[] = [
  {
    kind: 'bench',
    title: 'The sidecar under load (`make bench`)',
    what:
      'Generates the `wholesale` world (1.99M rate rows over 40 carrier and 6 customer decks, 100k CIDRs, 4,000 trunks, ' +
      '5,000 block rules), measures decisions in-process, then drives the real sidecar and a trivial uWebSockets.js server ' +
      '(the floor, `bench/floor-server.ts`: parse the JSON body, answer a fixed body of the same size) the same way in the ' +
      'same run: open loop at a fixed rate, latency from the scheduled send time, and closed loop. With a control plane ' +
      'holding the accounts it drives admission at the same rate as route (pairs in turn: the table shows the median pair, ' +
      'the notes every pair), CDR ingest, and the per-call mix the OpenSIPS script sends (auth, admit, route; one call in ten ' +
      'fails over; the CDR a few hundred calls later) beside the floor driven with the same requests. CPU per request is the ' +
      "sidecar's, over the scenario; on this shared 2-core machine it is the figure to compare across runs, tails are not.",
  },
  {
    kind: 'control',
    title: 'The control plane (`node dist/bench/control-bench.js`)',
    what:
      'A routing sync of the wholesale world to 3 sidecar processes, with drouting written and reloaded on 3 nodes (MI test ' +
      'doubles), end to end through the admin API: cold (rates read), then warm (an everyday change); a 150k-row CSV upload; ' +
      'with `--load-rate N`, a second cold sync while one sidecar takes N routes/s.',
  },
  {
    kind: 'live-calls',
    title: 'Live calls in memory (`node --expose-gc dist/bench/live-calls.js`)',
    what: 'Admissions in-process until that many calls are up: the heap, the RSS, a full GC pause with them live, the scavenges on the way.',
  },
  {
    kind: 'cdr-ingest',
    title: 'CDR ingest in-process (`node dist/bench/cdr-ingest.js`)',
    what: 'What a CDR costs: rating, settlement bookkeeping, the journal.',
  },
  {
    kind: 'journal-append-normal',
    title: 'Journal appends, durability normal (`node dist/bench/journal-append.js`)',
    what: 'One acknowledged money-log write per event-loop turn: wall time and the event loop’s CPU per write.',
  },
  {
    kind: 'journal-append-full',
    title: 'Journal appends, durability full (`node dist/bench/journal-append.js --durability full`)',
    what: 'The same with an fdatasync per append, in the writer thread.',
  },
  {
    kind: 'partner-ops',
    title: 'Partner API at a fixed rate (`node dist/bench/partner-ops.js`)',
    what:
      'The floor (bench/floor-server.ts, with topup’s requests), then get_balance, call_history, topup and setup_call, each open-loop ' +
      'at the rate for the time given, against a control plane on its embedded store, by the driver named (`node`: fetch; `wrk2`: ' +
      'wrk2 at a constant rate, coordinated omission corrected); latency from each request’s scheduled send. CPU per request is the ' +
      'server’s (the floor’s process for the floor). The tail against the floor’s in the same run is the figure to read on this ' +
      'shared machine, not the absolute one.',
  },
  {
    kind: 'through-opensips',
    title: 'Through a real OpenSIPS (`node dist/bench/through-opensips.js`)',
    what:
      'The rendered opensips-config script in a real OpenSIPS (built outside the repository: opensips-config/README.md), SIPp ' +
      'placing calls at a rate to SIPp carriers, first with the trivial sidecar (bench/trivial-sidecar.ts, the real answers’ ' +
      'bytes), then with the real one and its control plane: calls completed, each INVITE’s decision as OpenSIPS times it ' +
      '(`DECIDE-US`), CPU per completed call of the sidecar and of OpenSIPS.',
  },
  {
    kind: 'money-rounds',
    title: 'Money rounds at the centre (`node dist/bench/money-rounds.js`)',
    what:
      'Three nodes send the centre their money rounds every 200 ms, each round the CDRs of 200 ms at the given calls/s with ' +
      'their settlements and lease asks, against the ledger on SQLite and on PostgreSQL in the same run; then one node ' +
      'alone (solo), with the centre’s CPU and, on PostgreSQL, its server backends’ CPU per round. The three nodes’ rounds ' +
      'start together (`--phase aligned`, the worst case) or each at a random point of the 200 ms (`--phase random`, as ' +
      'independent sidecars’ timers fall); `--compare-phase N` alternates the two in one run. With `--compare-commit N`, ' +
      'the round’s commit with its locks released before the flush alternated with a plain synchronous one. With ' +
      '`--compare-round-cdrs`, rounds of each size given (sent as often as that many CDRs are due, as the sidecar’s ' +
      '`--round-cdrs` sends them) alternated: the three nodes’ latency and the CPU per CDR at the centre and its server.',
  },
  {
    kind: 'control-engines',
    title: 'The control plane on each store engine (`node dist/bench/control-bench.js --engines sqlite,postgres`)',
    what: 'The control-plane bench above, once with the centre on SQLite and once on PostgreSQL, in the same run.',
  },
  {
    kind: 'control-csv-engines',
    title: 'A 150k-row CSV rate upload on each store engine (`node dist/bench/control-bench.js --engines sqlite,postgres --csv-only`)',
    what: 'The upload alone through the admin API, with the control plane’s CPU, on SQLite and on PostgreSQL in the same run.',
  },
];

/** A figure for a table cell: numbers and words as they are, anything structured as compact JSON. */
function cell(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return String(value);
  return `\`${JSON.stringify(value)}\``;
}

function provenance(saved: SavedResult & { file: string }): string {
  return `\`${saved.command}\`, ${saved.at.slice(0, 16).replace('T', ' ')} UTC, Node ${saved.node}, ${saved.machine.cpus} × ${saved.machine.model} (\`bench/results/${saved.file}\`)`;
}

function sidecarSection(result: Record<string, unknown>): string[] {
  const micro = result.micro as Record<string, unknown>;
  const lines = [
    `In-process (${cell(micro.size)}: ${cell(micro.rateRows)} rate rows, ${cell(micro.cidrs)} CIDRs): snapshot compile ${cell(micro.compileSeconds)} s ` +
      `(decode ${cell(micro.decodeSeconds)} s, validate ${cell(micro.validateSeconds)} s); call/auth median ${cell(micro.authMedianMicros)} µs${micro.retailAuthMedianMicros === undefined ? '' : ` (through an access number ${cell(micro.retailAuthMedianMicros)} µs)`}, ` +
      `call/route median ${cell(micro.routeMedianMicros)} µs` +
      (micro.retailDecisionMedianMicros === undefined
        ? ''
        : `; auth → route of the same calls on one trunk ${cell(micro.decisionMedianMicros)} µs wholesale, ${cell(micro.retailDecisionMedianMicros)} µs through an access number`) +
      `. Sidecar RSS ${cell(result.sidecarRssBeforeLoadMB)} MB after start, ${cell(result.sidecarRssMB)} MB after the load and a swap.`,
    '',
    ...scenarioTable(result.rows as Row[]),
  ];
  const notes = result.notes as string[];
  if (notes.length > 0) lines.push('', ...notes.map((note) => `- ${note.trim()}`));
  return lines;
}

/** Scenarios driven the same way in one run, each beside the floor's. */
function scenarioTable(rows: Row[]): string[] {
  const lines = [
    '| scenario | rate/s | p50 µs | p99 µs | p99.9 µs | max µs | errors | CPU µs/req | event loop µs/req | against the floor |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const row of rows) {
    lines.push(
      `| ${row.scenario} | ${cell(row.achievedRate)} | ${cell(row.p50)} | ${cell(row.p99)} | ${cell(row.p999)} | ${cell(row.max)} | ${cell(row.errors)} | ${cell(row.cpuMicrosPerRequest)} | ${cell(row.loopMicrosPerRequest)} | ${againstFloor(row)} |`,
    );
  }
  return lines;
}

/** The partner API's streams as a scenario table (results from before it had rows: every figure as it is). */
function partnerSection(result: Record<string, unknown>): string[] {
  if (!Array.isArray(result.rows)) return figuresSection(result);
  const { rows, ...figures } = result;
  return [...scenarioTable(rows as Row[]), '', ...figuresSection(figures)];
}

/** One row per sidecar kind, then the ratios the issue's target is stated in. */
function throughOpensipsSection(result: Record<string, unknown>): string[] {
  const runs = result.runs as Record<string, unknown>[];
  const lines = [
    '| sidecar | calls/s | seconds | workers | completed % | decide p50 µs | decide p99 µs | sidecar CPU µs/call | event loop µs/call | OpenSIPS CPU µs/call | CDRs ingested | spooled | load before, after |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const run of runs) {
    const decide = run.decide as Record<string, unknown>;
    const load = (key: string) => (run[key] as number[])[0];
    lines.push(
      `| ${cell(run.sidecar)} | ${cell(run.rate)} | ${cell(run.seconds)} | ${cell(run.workers)} | ${cell(run.completed_pct)} | ${cell(decide.p50_us)} | ${cell(decide.p99_us)} | ` +
        `${cell(run.sidecar_cpu_us_per_call)} | ${cell(run.sidecar_loop_cpu_us_per_call)} | ${cell(run.opensips_cpu_us_per_call)} | ${cell(run.cdrs_ingested)} | ${cell(run.cdrs_spooled)} | ${load('load_average_before')}, ${load('load_average_after')} |`,
    );
  }
  if (result.ratios !== null)
    lines.push('', `Real / trivial: ${cell(result.ratios)} (target: 100% completed, each ratio ≤ 1.3 for the decision, ≤ 1.5 for CPU).`);
  return lines;
}

/** A row per engine (three nodes, then one alone), the commit comparison when it ran. */
function moneyRoundsSection(result: Record<string, unknown>): string[] {
  const lines = [
    `${cell(result.nodes)} nodes (${cell(result.phase ?? 'aligned')} rounds), ${cell(result.calls_per_round)} CDRs a round (one every ${cell(result.round_every_ms ?? 200)} ms), ${cell(result.accounts)} accounts, ${cell(result.seconds)} s; target p99 < ${cell(result.target_p99_ms)} ms; ${cell(result.load)}.`,
    '',
    '| engine | p50 ms | p99 ms | solo p50 ms | solo p99 ms | centre CPU ms/round (solo) | server CPU ms/round (solo) | statements/round |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  const compared: string[] = [];
  for (const engine of ['sqlite', 'postgres']) {
    const figures = result[engine] as Record<string, unknown> | undefined;
    if (figures === undefined) continue;
    const solo = (figures.solo ?? {}) as Record<string, unknown>;
    lines.push(
      `| ${engine} | ${cell(figures.p50_ms)} | ${cell(figures.p99_ms)} | ${cell(solo.p50_ms)} | ${cell(solo.p99_ms)} | ${cell(solo.cpu_ms_per_round)} | ${cell(solo.server_backend_cpu_ms_per_round)} | ${cell(figures.statements_per_round)} |`,
    );
    const comparison = figures.compare_commit as
      Record<string, { three_nodes: Record<string, unknown>; solo: Record<string, unknown> }> | undefined;
    const byPhase = figures.compare_phase as Record<string, Record<string, unknown>> | undefined;
    if (byPhase !== undefined)
      compared.push(
        `- ${engine}, three nodes by phase: ${Object.entries(byPhase)
          .map(([phase, run]) => `${phase} p50 ${cell(run.p50_ms)} / p99 ${cell(run.p99_ms)} ms`)
          .join(', ')}`,
      );
    const bySize = figures.compare_round_cdrs as
      | {
          phase: string;
          by_round_cdrs: Record<string, { round_every_ms: number; three_nodes: Record<string, unknown> }>;
          solo_cpu_fit?: Record<string, Record<string, unknown>>;
        }
      | undefined;
    if (bySize !== undefined) {
      compared.push(
        `- ${engine}, three nodes (${bySize.phase}) by round size: ${Object.entries(bySize.by_round_cdrs)
          .map(
            ([cdrs, { round_every_ms, three_nodes }]) =>
              `${cdrs} CDRs every ${cell(round_every_ms)} ms p50 ${cell(three_nodes.p50_ms)} / p99 ${cell(three_nodes.p99_ms)} ms, ` +
              `CPU µs a CDR centre ${cell(three_nodes.centre_cpu_us_per_cdr)} server ${cell(three_nodes.server_cpu_us_per_cdr ?? '–')}`,
          )
          .join('; ')}`,
      );
      if (bySize.solo_cpu_fit !== undefined)
        compared.push(
          `- ${engine}, a solo round's CPU by its size: ${Object.entries(bySize.solo_cpu_fit)
            .map(([side, fit]) => `${side} ${cell(fit.fixed_ms_per_round)} ms a round + ${cell(fit.us_per_cdr)} µs a CDR`)
            .join(', ')}`,
        );
    }
    if (comparison !== undefined)
      for (const [commit, phases] of Object.entries(comparison))
        compared.push(
          `- ${engine}, ${commit} commit: three nodes p50 ${cell(phases.three_nodes.p50_ms)} / p99 ${cell(phases.three_nodes.p99_ms)} ms, solo p50 ${cell(phases.solo.p50_ms)} / p99 ${cell(phases.solo.p99_ms)} ms`,
        );
  }
  if (compared.length > 0) lines.push('', ...compared);
  return lines;
}

function figuresSection(result: Record<string, unknown>): string[] {
  return ['| figure | value |', '| --- | --- |', ...Object.entries(result).map(([name, value]) => `| ${name} | ${cell(value)} |`)];
}

export function renderPerformanceDoc(results: Map<string, SavedResult & { file: string }>): string {
  const lines = [
    '# Performance',
    '',
    'Generated by `make perf-doc` (`bench/report.ts`) from the newest result of each bench in `bench/results/`: do not edit',
    'by hand, run the bench and the command. Each section names the command, the time and the machine. What was tried, and why',
    'the code is as it is, is in [performance-log.md](performance-log.md).',
  ];
  const missing: string[] = [];
  for (const bench of BENCHES) {
    const saved = results.get(bench.kind);
    if (saved === undefined) {
      missing.push(bench.title);
      continue;
    }
    lines.push('', `## ${bench.title}`, '', bench.what, '', `From ${provenance(saved)}.`, '');
    const section =
      bench.kind === 'bench'
        ? sidecarSection
        : bench.kind === 'partner-ops'
          ? partnerSection
          : bench.kind === 'through-opensips'
            ? throughOpensipsSection
            : bench.kind === 'money-rounds'
              ? moneyRoundsSection
              : figuresSection;
    lines.push(...section(saved.result));
  }
  if (missing.length > 0) lines.push('', '## Not measured for this page', '', ...missing.map((title) => `- ${title}`));
  return `${lines.join('\n')}\n`;
}

function main(): void {
  const { values } = benchArgs({ options: { out: { type: 'string', default: join(REPO, 'docs', 'performance.md') } } });
  const results = newestResults();
  writeFileSync(values.out, renderPerformanceDoc(results));
  process.stdout.write(`wrote ${values.out} from ${results.size} result${results.size === 1 ? '' : 's'}\n`);
}

main();
