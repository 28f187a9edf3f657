/**
 * What one live change costs the sidecar to apply (issue 18), in process, per kind: applyDeltas on the
 * dataset's compiled snapshot (copy the changed table, check the changed rows, recompileLive), timed alone,
 * without HTTP or the delta store. The figure the process bench's sidecar_delta_apply_seconds adds to.
 *
 *   node dist/bench/live-apply.js [--size small|demo|wholesale] [--changes 50] [--kinds cidr_changed,block_rule_created]
 *
 * Beside wall-clock time (`apply_ms`), the process's CPU time per apply (`cpu_ms`, getrusage): on a loaded box
 * the wall clock counts the time the bench waited for a core, the CPU time does not. `--kinds` runs only those
 * kinds (for a profile of one).
 */
import { loadavg } from 'node:os';
import { benchArgs } from './bench-args.js';
import { generateDataset, SIZES } from '../src/devkit/dataset.js';
import { compileSnapshot } from '../src/core/snapshot/compile.js';
import type { Delta } from '../src/core/protocol/deltas.js';
import { applyDeltas, smallTablesOf, type LiveState } from '../src/core/snapshot/live.js';
import { medianAndTail } from './live-world.js';

function main(): void {
  const { values } = benchArgs({
    options: { size: { type: 'string', default: 'small' }, changes: { type: 'string', default: '50' }, kinds: { type: 'string' } },
  });
  const only = values.kinds === undefined ? null : new Set(values.kinds.split(','));
  const changes = Number(values.changes);
  const { tables } = generateDataset(SIZES[values.size]);
  let state: LiveState = {
    compiled: compileSnapshot({ format_version: 1, version: 1, created_at: new Date().toISOString(), checksum: 'x', tables }).compiled,
    tables: smallTablesOf(tables),
  };
  let seq = state.compiled.deltaSeq;
  const trunk = tables.customer_trunks[0];
  const carrier = tables.carrier_trunks[0];
  const gateway = tables.carrier_gateways.find((row) => row.carrier_trunk_id === carrier.id)!;
  const registration = tables.sip_registrations.at(0);
  const config = tables.lcr_config.at(0);
  const ipAuth = tables.trunk_ip_auth.find((row) => row.trunk_type === 'customer' && row.trunk_id === trunk.id)!;
  const calling = tables.customer_trunks.find((row) => row.status === 'active')!;
  /** A delta upserting `row` into `table` (its sequence is filled in when applied). */
  const upsert = (table: Delta['table'], row: { id: number } & Record<string, unknown>): Omit<Delta, 'seq'> => ({
    table,
    op: 'upsert',
    id: row.id,
    row,
  });
  const either = <T>(i: number, a: T, b: T): T => (i % 2 === 0 ? a : b);
  const remove = (table: Delta['table'], id: number): Omit<Delta, 'seq'> => ({ table, op: 'delete', id, row: null });
  /** Each kind's i-th change. */
  const kinds: Record<string, ((i: number) => Omit<Delta, 'seq'>) | null> = {
    // A trunk's CIDR added, then the same one removed: the IP auth index changes by one network each time.
    cidr_added_removed: (i) =>
      either(
        i,
        upsert('trunk_ip_auth', { id: 9_000_000, trunk_type: 'customer', trunk_id: trunk.id, cidr: '203.0.113.0/28' }),
        remove('trunk_ip_auth', 9_000_000),
      ),
    cidr_changed: (i) => upsert('trunk_ip_auth', { ...ipAuth, cidr: either(i, '198.51.100.7/32', ipAuth.cidr) }),
    // Suspending a trunk takes all its CIDRs out of IP auth; reactivating puts them back.
    customer_trunk_status: (i) => upsert('customer_trunks', { ...calling, status: either(i, 'suspended', 'active') }),
    customer_trunk_limit: (i) => upsert('customer_trunks', { ...trunk, cps_limit: 100 + i }),
    carrier_trunk_limit: (i) => upsert('carrier_trunks', { ...carrier, cps_limit: 100 + i }),
    carrier_trunk_status: (i) => upsert('carrier_trunks', { ...carrier, status: either(i, 'suspended', 'active') }),
    gateway_status: (i) => upsert('carrier_gateways', { ...gateway, status: either(i, 'disabled', 'active') }),
    failover_rule: (i) =>
      upsert('failover_rules', {
        id: 9_000_000,
        carrier_trunk_id: carrier.id,
        sip_code: 488,
        action: either(i, 'return_to_customer', 'retry_next'),
      }),
    lcr_config: config === undefined ? null : (i) => upsert('lcr_config', { ...config, acceptable_loss_pct: String(i) }),
    sip_registration:
      registration === undefined ? null : (i) => upsert('sip_registrations', { ...registration, status: either(i, 'disabled', 'active') }),
    block_rule_created: (i) =>
      upsert('block_rules', {
        id: 9_000_000 + i,
        scope: 'global',
        scope_id: null,
        block_type: 'dnis',
        pattern: `6129${String(i).padStart(7, '0')}`,
        match_type: 'exact',
        sip_response_code: 403,
        is_active: true,
      }),
  };
  const summary: Record<string, unknown> = {};
  const cpuSummary: Record<string, unknown> = {};
  for (const [kind, delta] of Object.entries(kinds)) {
    if (only !== null && !only.has(kind)) continue;
    if (delta === null) {
      summary[kind] = 'not in this dataset';
      continue;
    }
    const ms: number[] = [];
    const cpuMs: number[] = [];
    for (let i = 0; i < changes; i++) {
      const cpu = process.cpuUsage();
      const started = performance.now();
      const result = applyDeltas(state, [{ ...delta(i), seq: ++seq }]);
      ms.push(performance.now() - started);
      const spent = process.cpuUsage(cpu);
      cpuMs.push((spent.user + spent.system) / 1000);
      if (!result.ok) throw new Error(`${kind}: ${result.reason}`);
      state = result.state;
    }
    summary[kind] = medianAndTail(ms);
    cpuSummary[kind] = medianAndTail(cpuMs);
  }
  const report = { size: values.size, changes, apply_ms: summary, cpu_ms: cpuSummary, uptime: loadavg() };
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
}

main();
