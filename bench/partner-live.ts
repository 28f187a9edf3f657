/**
 * A partner's setup_call (issue 19) on the live channel (issue 18): from setup_call's 200 until the translation
 * is usable on all 3 sidecars (call/auth to the access number answers the retail account), p50/p99. A control
 * plane with the partner API on and 3 sidecars following its delta log, after one full sync (the base); each
 * setup_call is a new caller, so each is a new translation. Each sidecar is polled in a loop; the figure is the
 * slowest of the three.
 *
 *   node dist/bench/partner-live.js [--size small|demo|wholesale] [--calls 50]
 *
 * Needs an idle machine for figures worth quoting; a busy one gives an upper bound.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchArgs } from './bench-args.js';
import { makePartnerKey, partnerCaller, partnerControlArgs, partnerUrlOf } from '../src/devkit/partner-tokens.js';
import type { ServiceProcess } from '../src/devkit/service-process.js';
import { medianAndTail, send, startLiveWorld, type Answer } from './live-world.js';

const ACCESS_NUMBER = '61280000000';

async function main(): Promise<void> {
  const { values } = benchArgs({ options: { size: { type: 'string', default: 'small' }, calls: { type: 'string', default: '50' } } });
  const calls = Number(values.calls);
  const key = await makePartnerKey('bench-key');
  const jwks = join(mkdtempSync(join(tmpdir(), 'partner-bench-')), 'jwks.json');
  writeFileSync(jwks, JSON.stringify({ keys: [key.jwk] }));
  const { dataset, base, control, sidecars, stop } = await startLiveWorld(values.size, 3, [], partnerControlArgs(jwks));
  await control.waitForLine((entry) => entry.includes('partner API listening'));
  const call = partnerCaller(partnerUrlOf(control.logs), key);

  // The product's calls go on the first caller trunk of the dataset, in its currency.
  const [sourceIp, techPrefix, trunkId] = dataset.traffic.callers[0];
  const currency = dataset.tables.customer_trunks.find((trunk) => trunk.id === trunkId)!.currency;
  const tenant = await send(`${base}/api/partner-tenants`, 'POST', { tenant_id: 'acme', name: 'Bench' });
  await send(`${base}/api/partner-products`, 'POST', {
    partner_tenant_id: tenant.id,
    product_id: 'bench_product',
    currency,
    customer_trunk_id: trunkId,
    access_numbers: ACCESS_NUMBER,
    requires_pin: false,
  });
  const partner = async (operation: string, body: Record<string, unknown>): Promise<Answer> => {
    const answer = await call(operation, body);
    if (answer.status !== 200 && answer.status !== 201) throw new Error(`${operation}: ${answer.status} ${answer.text}`);
    return answer.body as Answer;
  };
  const account = (await partner('create_account', { product_id: 'bench_product' })).account_code_12 as string;
  const usable = async (sidecar: ServiceProcess, caller: string): Promise<boolean> => {
    const answer = await send(`http://127.0.0.1:${sidecar.port}/api/opensips/call/auth`, 'POST', {
      source_ip: sourceIp,
      call_id: 'bench@partner-live',
      ani: caller,
      dnis: `${techPrefix}${ACCESS_NUMBER}`,
    });
    return typeof answer.retail_account_id === 'number';
  };

  const ms: number[] = [];
  for (let i = 0; i < calls; i++) {
    const caller = `6125560${String(i).padStart(4, '0')}`;
    await partner('setup_call', {
      a_number: caller,
      b_number: '61298765432',
      access_number: ACCESS_NUMBER,
      account_number: account,
      ttl: 600,
    });
    const started = performance.now();
    await Promise.all(
      sidecars.map(async (sidecar) => {
        while (!(await usable(sidecar, caller)));
      }),
    );
    ms.push(performance.now() - started);
  }
  const summary = { setup_call_usable_everywhere: { calls: ms.length, max_at: ms.indexOf(Math.max(...ms)), ...medianAndTail(ms) } };
  process.stdout.write(`${JSON.stringify({ size: values.size, sidecars: 3, summary }, null, 2)}\n`);
  stop();
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
