/**
 * The partner API at a fixed request rate (issue 19's target: 500 req/s, p99 < 5 ms for reads and < 10 ms
 * for writes on the embedded store): a real control plane with its partner listener, a JWKS file and one
 * cached ID token (as a partner's app holds one), accounts made and topped up through the API, then an
 * open-loop stream of get_balance and one of topup (each with its own Idempotency-Key). Latency is taken
 * from each request's scheduled send time, so a stall counts against every request it delayed.
 *
 * Each stream also reports the control plane's CPU per request (process CPU time / requests), the figure
 * that a change moves on a loaded box where the latencies are mostly other processes' noise. The same client
 * drives the uWS floor (bench/floor-server.ts: parse the body, answer a fixed one) at the same rate in the same
 * run: the p99 this box gives a server that does nothing, beside which the partner API's p99 is read.
 *
 *   node dist/bench/partner-ops.js [--rate 500] [--seconds 10] [--accounts 50] [--control-flags='--cpu-prof ...']
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CONTROL_MAIN } from '../src/devkit/paths.js';
import { startCpuMeter, type CpuPerRequest } from '../src/devkit/process-cpu.js';
import { makePartnerKey, partnerControlArgs, partnerToken, partnerUrlOf } from '../src/devkit/partner-tokens.js';
import { startService } from '../src/devkit/service-process.js';
import { medianAndTail, send } from './live-world.js';
import { reportResult } from './results.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));

interface StreamResult {
  requests: number;
  errors: number;
  /** The errors by HTTP status, or by the client's error (a refused or reset connection) when no answer came. */
  error_kinds: Record<string, number>;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rate: { type: 'string', default: '500' },
      seconds: { type: 'string', default: '10' },
      accounts: { type: 'string', default: '50' },
      // Node/V8 flags for the control plane, space-separated (e.g. --cpu-prof --cpu-prof-dir=/tmp/prof).
      'control-flags': { type: 'string', default: '' },
    },
  });
  const rate = Number(values.rate);
  const seconds = Number(values.seconds);
  const dir = mkdtempSync(join(tmpdir(), 'partner-ops-'));
  const key = await makePartnerKey('bench');
  const jwks = join(dir, 'jwks.json');
  writeFileSync(jwks, JSON.stringify({ keys: [key.jwk] }));
  const control = await startService(
    CONTROL_MAIN,
    ['--port', '0', '--data-dir', join(dir, 'control'), ...partnerControlArgs(jwks)],
    // Logged after the partner listener's own line (partnerUrlOf reads that one).
    'control plane listening',
    { execArgv: values['control-flags'].split(' ').filter((flag) => flag !== '') },
  );
  try {
    const base = `http://127.0.0.1:${control.port}`;
    const tenant = await send(`${base}/api/partner-tenants`, 'POST', { tenant_id: 'bench', name: 'Bench' });
    await send(`${base}/api/partner-products`, 'POST', {
      partner_tenant_id: tenant.id,
      product_id: 'bench_au',
      currency: 'AUD',
      requires_pin: false,
    });
    const partnerUrl = partnerUrlOf(control.logs);
    const token = await partnerToken(key, { tenant: 'bench' });
    let keys = 0;
    const call = async (operation: string, body: Record<string, unknown>, url = partnerUrl): Promise<number> => {
      const response = await fetch(`${url}/${operation}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          authorization: `Bearer ${token}`,
          'idempotency-key': `bench-${process.pid}-${++keys}`,
        },
        body: JSON.stringify(body),
      });
      await response.arrayBuffer();
      return response.status;
    };
    const accounts: string[] = [];
    for (let i = 0; i < Number(values.accounts); i++) {
      const response = await fetch(`${partnerUrl}/create_account`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          authorization: `Bearer ${token}`,
          'idempotency-key': `bench-create-${i}`,
        },
        body: JSON.stringify({ product_id: 'bench_au' }),
      });
      const created = (await response.json()) as { account_code_12: string };
      accounts.push(created.account_code_12);
      if ((await call('topup', { account: created.account_code_12, amount: 100 })) !== 200) throw new Error('the first top-up failed');
    }

    /** `operation` at `rate`/s for `seconds`, open loop: each request is sent at its slot, answered or not. */
    const stream = async (
      operation: string,
      body: (i: number) => Record<string, unknown>,
      server: { url: string; pid: number } = { url: partnerUrl, pid: control.child.pid! },
    ): Promise<StreamResult & CpuPerRequest> => {
      const total = rate * seconds;
      const meter = startCpuMeter(server.pid);
      const latencies: number[] = [];
      let errors = 0;
      const errorKinds: Record<string, number> = {};
      const failed = (kind: string): void => {
        errors++;
        errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
      };
      const pending: Promise<void>[] = [];
      const start = performance.now() + 50;
      for (let i = 0; i < total; i++) {
        const slot = start + (i * 1000) / rate;
        const wait = slot - performance.now();
        if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
        pending.push(
          call(operation, body(i), server.url).then(
            (status) => {
              if (status === 200) latencies.push(performance.now() - slot);
              else failed(String(status));
            },
            (error: unknown) =>
              failed(error instanceof Error ? String((error.cause as { code?: string } | undefined)?.code ?? error.message) : 'error'),
          ),
        );
      }
      await Promise.all(pending);
      const sorted = latencies.sort((a, b) => a - b);
      return {
        requests: total,
        errors,
        error_kinds: errorKinds,
        ...medianAndTail(sorted),
        max_ms: Math.round(sorted[sorted.length - 1] * 10) / 10,
        ...meter(total),
      };
    };

    const account = (i: number): string => accounts[(i * 7) % accounts.length];
    await stream('get_balance', (i) => ({ account: account(i) })); // warm-up: JIT, connections
    const reads = await stream('get_balance', (i) => ({ account: account(i) }));
    const writes = await stream('topup', (i) => ({ account: account(i), amount: 0.01 }));
    const floorServer = await startService(join(HERE, 'floor-server.js'), ['--port', '0', '--body-bytes', '200'], 'floor listening');
    let floor: StreamResult & CpuPerRequest;
    try {
      const onFloor = { url: `http://127.0.0.1:${floorServer.port}`, pid: floorServer.child.pid! };
      await stream('topup', (i) => ({ account: account(i), amount: 0.01 }), onFloor); // warm-up
      floor = await stream('topup', (i) => ({ account: account(i), amount: 0.01 }), onFloor);
    } finally {
      floorServer.child.kill('SIGTERM');
    }
    // How much of a write's latency is its wait for the group commit's fdatasync: the control plane logs the
    // flush's figures as it stops (they include the 2 × accounts writes of the set-up).
    control.child.kill('SIGTERM');
    const stopping = JSON.parse(await control.waitForLine((line) => line.includes('"msg":"stopping"'))) as { group_commit: unknown };
    reportResult('partner-ops', `node dist/bench/partner-ops.js ${process.argv.slice(2).join(' ')}`.trim(), {
      rate,
      seconds,
      accounts: accounts.length,
      get_balance: reads,
      topup: writes,
      floor,
      p99_vs_floor: {
        get_balance: Math.round((reads.p99_ms / floor.p99_ms) * 10) / 10,
        topup: Math.round((writes.p99_ms / floor.p99_ms) * 10) / 10,
      },
      group_commit: stopping.group_commit,
      load_average_1m: Math.round(loadavg()[0] * 10) / 10,
    });
  } finally {
    // Once: a second SIGTERM while it stops would kill it before it writes a --cpu-prof profile.
    if (!control.child.killed) control.child.kill('SIGTERM');
    if (control.child.exitCode === null && control.child.signalCode === null) await once(control.child, 'exit');
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`partner-ops bench failed: ${String(error)}\n`);
  process.exit(1);
});
