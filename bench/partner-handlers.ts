/**
 * The partner API's handlers in-process (issue 19): the real routes over the real SQLite store on disk, its
 * group commit and a logger writing to /dev/null, driven without HTTP. Reports the event loop's CPU per request
 * (its thread's CPU time from /proc) and the scavenges per thousand requests, figures that a shared, loaded box
 * moves far less than it moves latency: partner-ops.js's p99 is made of them (every millisecond a request keeps
 * the loop is a millisecond the requests behind it queue), so a change to the path is judged here first.
 *
 * With `--gap-ms N` the requests go one at a time, N ms apart, as they reach the control plane at a few hundred
 * a second: the loop idles between them and each runs with the CPU's caches taken by whatever ran meanwhile,
 * which costs the same code several times what it costs back to back (get_balance ~40 µs back to back, 2026-12-07).
 *
 *   node dist/bench/partner-handlers.js [--requests 5000] [--concurrency 8 | --gap-ms 2] [--rounds 3] [--operations get_balance,topup,setup_call]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { benchArgs } from './bench-args.js';
import pino from 'pino';
import type { Route } from '../src/core/http/server.js';
import { createLogger } from '../src/core/logger.js';
import { cpuSeconds } from '../src/devkit/process-cpu.js';
import { insertPartnerTenant, partnerRequest } from '../src/devkit/partner-world.js';
import { PARTNER_AUDIENCE, PARTNER_ISSUER, makePartnerKey, partnerToken } from '../src/devkit/partner-tokens.js';
import { LeaseRecalls } from '../sync/ledger/lease-recall.js';
import { PartnerAuthenticator } from '../sync/partner/auth.js';
import { DEFAULT_PARTNER_LIMITS, PartnerLimits } from '../sync/partner/limits.js';
import { partnerRoutes } from '../sync/partner/routes.js';
import { openCentreStores } from '../sync/stores.js';

const ACCESS_NUMBER = '61290000000';

/** Each operation's body for its i-th request: accounts in turn; setup_call's caller the account's own (each ends the one before it). */
const BODIES: Record<string, (accounts: readonly string[], i: number) => Record<string, unknown>> = {
  get_balance: (accounts, i) => ({ account: accounts[(i * 7) % accounts.length] }),
  topup: (accounts, i) => ({ account: accounts[(i * 7) % accounts.length], amount: 0.01 }),
  setup_call: (accounts, i) => {
    const at = (i * 7) % accounts.length;
    return {
      a_number: `+614${String(at).padStart(8, '0')}`,
      b_number: '+61412345678',
      access_number: `+${ACCESS_NUMBER}`,
      account_number: accounts[at],
      ttl: 600,
    };
  },
};

async function main(): Promise<void> {
  const { values } = benchArgs({
    options: {
      requests: { type: 'string', default: '5000' },
      concurrency: { type: 'string', default: '8' },
      rounds: { type: 'string', default: '3' },
      accounts: { type: 'string', default: '50' },
      operations: { type: 'string', default: 'get_balance,topup' },
      'gap-ms': { type: 'string', default: '0' },
    },
  });
  const gapMs = Number(values['gap-ms']);
  const requests = Number(values.requests);
  // Paced requests go one at a time: each finds the loop idle, as at a steady few hundred a second.
  const concurrency = Number(values['gap-ms']) > 0 ? 1 : Number(values.concurrency);
  const operations = values.operations.split(',');
  for (const operation of operations)
    if (!Object.hasOwn(BODIES, operation)) throw new Error(`no operation ${operation}: ${Object.keys(BODIES).join(', ')}`);
  const dir = mkdtempSync(join(tmpdir(), 'partner-handlers-'));
  const stores = openCentreStores(join(dir, 'config.db'));
  try {
    await insertPartnerTenant(
      stores.config,
      { tenant_id: 'bench', name: 'Bench', operations: 'get_balance,topup,debit_balance,create_account,setup_call' },
      { product_id: 'bench_au', currency: 'AUD', access_numbers: ACCESS_NUMBER },
    );
    const key = await makePartnerKey('bench');
    const jwksFile = join(dir, 'jwks.json');
    writeFileSync(jwksFile, JSON.stringify({ keys: [key.jwk] }));
    const token = await partnerToken(key, { tenant: 'bench' });
    const routes = partnerRoutes({
      partner: stores.partner,
      ledger: stores.ledger,
      recalls: new LeaseRecalls(),
      auth: new PartnerAuthenticator({ issuer: PARTNER_ISSUER, audience: PARTNER_AUDIENCE, jwksUrl: null, jwksFile }),
      // As the control plane logs (its own pino options), to a sink: the line's encoding is part of a request's cost.
      log: createLogger('info', 'control', pino.destination('/dev/null')).child({ api: 'partner' }),
      stagePrefix: '',
      flushed: stores.flushed,
      // The per-address check is part of a request's cost; the tenant's rate is off: this loop runs past any.
      limits: new PartnerLimits({ ...DEFAULT_PARTNER_LIMITS, tenantRate: null }),
    });
    let keys = 0;
    const post = async (operation: string, body: Record<string, unknown>): Promise<string> => {
      const route = routes.find((candidate) => candidate.path === `/${operation}`) as Route;
      const response = await route.handler(partnerRequest(route.path, body, token, { 'idempotency-key': `bench-${++keys}` }));
      if (response.status !== 200 && response.status !== 201) throw new Error(`${operation}: ${response.status} ${String(response.body)}`);
      return String(response.body);
    };
    const accounts: string[] = [];
    for (let i = 0; i < Number(values.accounts); i++) {
      const created = JSON.parse(await post('create_account', { product_id: 'bench_au' })) as { account_code_12: string };
      accounts.push(created.account_code_12);
      await post('topup', { account: created.account_code_12, amount: 100 });
    }
    let scavenges = 0;
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries())
        if ((entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === 1) scavenges++;
    }).observe({ entryTypes: ['gc'] });

    /** `requests` of `operation`, `concurrency` in flight; the event loop's CPU µs per request and scavenges per 1,000. */
    const measure = async (operation: string, body: (i: number) => Record<string, unknown>) => {
      let next = 0;
      const scavengesBefore = scavenges;
      const loopBefore = cpuSeconds(process.pid, true);
      // process.cpuUsage() marks the measured section for callgrind too (--dump-before='node::CPUUsage*').
      const allBefore = process.cpuUsage();
      const started = performance.now();
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < requests) {
            await post(operation, body(next++));
            if (gapMs > 0) await new Promise((resolve) => setTimeout(resolve, gapMs));
          }
        }),
      );
      const all = process.cpuUsage(allBefore);
      const wallMs = performance.now() - started;
      // Let the last scavenge's entry arrive.
      await new Promise((resolve) => setImmediate(resolve));
      return {
        loopMicrosPerRequest: Math.round(((cpuSeconds(process.pid, true) - loopBefore) * 1e6) / requests),
        cpuMicrosPerRequest: Math.round((all.user + all.system) / requests),
        wallMicrosPerRequest: Math.round((wallMs * 1000) / requests),
        scavengesPer1000: Math.round(((scavenges - scavengesBefore) * 1000 * 10) / requests) / 10,
      };
    };
    const rounds = [];
    for (let round = 0; round < Number(values.rounds); round++) {
      const figures: Record<string, Awaited<ReturnType<typeof measure>>> = {};
      for (const operation of operations) figures[operation] = await measure(operation, (i) => BODIES[operation](accounts, i));
      rounds.push(figures);
    }
    process.stdout.write(
      `${JSON.stringify({ requests, concurrency, gap_ms: gapMs, rounds, group_commit: stores.flushTiming(), load_average_1m: Math.round(loadavg()[0] * 10) / 10 })}\n`,
    );
  } finally {
    await stores.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`partner-handlers bench failed: ${String(error)}\n`);
  process.exit(1);
});
