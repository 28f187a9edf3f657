/**
 * The partner API's handlers in-process (issue 19): the real routes over the real SQLite store on disk, its
 * group commit and a logger writing to /dev/null, driven without HTTP. Reports the event loop's CPU per request
 * (its thread's CPU time from /proc) and the scavenges per thousand requests, figures that a shared, loaded box
 * moves far less than it moves latency: partner-ops.js's p99 is made of them (every millisecond a request keeps
 * the loop is a millisecond the requests behind it queue), so a change to the path is judged here first.
 *
 *   node dist/bench/partner-handlers.js [--requests 5000] [--concurrency 8] [--rounds 3]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import pino from 'pino';
import type { Route } from '../src/core/http/server.js';
import { createLogger } from '../src/core/logger.js';
import { cpuSeconds } from '../src/devkit/process-cpu.js';
import { insertPartnerTenant, partnerRequest } from '../src/devkit/partner-world.js';
import { PARTNER_AUDIENCE, PARTNER_ISSUER, makePartnerKey, partnerToken } from '../src/devkit/partner-tokens.js';
import { LeaseRecalls } from '../sync/ledger/lease-recall.js';
import { PartnerAuthenticator } from '../sync/partner/auth.js';
import { partnerRoutes } from '../sync/partner/routes.js';
import { openCentreStores } from '../sync/stores.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      requests: { type: 'string', default: '5000' },
      concurrency: { type: 'string', default: '8' },
      rounds: { type: 'string', default: '3' },
      accounts: { type: 'string', default: '50' },
    },
  });
  const requests = Number(values.requests);
  const concurrency = Number(values.concurrency);
  const dir = mkdtempSync(join(tmpdir(), 'partner-handlers-'));
  const stores = openCentreStores(join(dir, 'config.db'));
  try {
    await insertPartnerTenant(
      stores.config,
      { tenant_id: 'bench', name: 'Bench', operations: 'get_balance,topup,debit_balance,create_account' },
      { product_id: 'bench_au', currency: 'AUD' },
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
          while (next < requests) await post(operation, body(next++));
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
    const account = (i: number): string => accounts[(i * 7) % accounts.length];
    const rounds = [];
    for (let round = 0; round < Number(values.rounds); round++) {
      rounds.push({
        get_balance: await measure('get_balance', (i) => ({ account: account(i) })),
        topup: await measure('topup', (i) => ({ account: account(i), amount: 0.01 })),
      });
    }
    process.stdout.write(
      `${JSON.stringify({ requests, concurrency, rounds, group_commit: stores.flushTiming(), load_average_1m: Math.round(loadavg()[0] * 10) / 10 })}\n`,
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
