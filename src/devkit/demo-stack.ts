/**
 * `make run`: the control plane and one sidecar on this machine, with a demo
 * routing world of realistic size loaded into the control plane's store, a
 * first sync, and example requests for both. Ctrl-C stops both.
 *
 *   node dist/src/devkit/demo-stack.js [--size demo] [--control-port 8080] [--sidecar-port 8090]
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openCentreStores } from '../../sync/stores.js';
import { issueNodeSecret } from '../../sync/store/node-credentials.js';
import { seedStore } from '../../sync/admin/seed.js';
import { generateDataset, SIZES } from './dataset.js';
import { CONTROL_MAIN, REPO, SIDECAR_MAIN } from './paths.js';
import { startService } from './service-process.js';

/** Starts a service, forwarding its pino lines so the operator sees both processes' logs. */
async function start(script: string, args: string[], ready: string): Promise<ChildProcess> {
  return (await startService(script, args, ready, { onLine: (line) => process.stdout.write(`${line}\n`) })).child;
}

/** The control plane and the sidecar, once started: stopped with the stack, also when it fails. */
const children: ChildProcess[] = [];

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      size: { type: 'string', default: 'demo' },
      'control-port': { type: 'string', default: '8080' },
      'sidecar-port': { type: 'string', default: '8090' },
    },
  });
  const dataDir = join(REPO, 'data', 'demo');
  const controlDb = join(dataDir, 'control', 'config.db');
  const sidecarUrl = `http://127.0.0.1:${values['sidecar-port']}`;
  const controlUrl = `http://127.0.0.1:${values['control-port']}`;
  mkdirSync(dataDir, { recursive: true });

  if (!existsSync(controlDb)) {
    const size = SIZES[values.size] as (typeof SIZES)[string] | undefined;
    if (size === undefined) throw new Error(`unknown size ${values.size} (${Object.keys(SIZES).join(', ')})`);
    process.stderr.write(`loading the ${values.size} world into ${controlDb}...\n`);
    const stores = openCentreStores(controlDb);
    const store = stores.config;
    const world = generateDataset(size);
    await seedStore(store, world.tables);
    const now = new Date().toISOString();
    await store.insert('opensips_nodes', {
      hostname: 'opensips-demo-01',
      mi_socket_address: 'http://127.0.0.1:8888/mi',
      sidecar_address: sidecarUrl,
      drouting_db: join(dataDir, 'opensips', 'opensips.sqlite'),
      region: 'local',
      status: 'active',
      created_at: now,
      updated_at: now,
    });
    // Prepaid accounts start with 50.00 so that admission has something to lease.
    for (const account of world.tables.customer_accounts) {
      if (account.billing_mode !== 'prepaid') continue;
      await stores.ledger.changeBalance({ entityType: 'customer', entityId: account.id, currency: account.currency }, () => ({
        next: { balance: '50.00', reserved: '0' },
        transaction: { transaction_type: 'credit', amount: '50.00', description: 'demo funding', cdr_id: null, call_id: null },
      }));
    }
    await stores.close();
  }

  // A fresh secret for the demo node at every start (a data directory from before node credentials has
  // none), written where the sidecar reads it: the centre refuses money rounds without one.
  const secretFile = join(dataDir, 'sidecar-centre.secret');
  {
    const stores = openCentreStores(controlDb);
    const node = (await stores.config.list('opensips_nodes', { where: { hostname: 'opensips-demo-01' }, limit: 1, offset: 0 })).rows.at(0);
    if (node === undefined) throw new Error(`${controlDb} has no node opensips-demo-01: remove ${dataDir} to start over`);
    const { secret } = await issueNodeSecret(stores.config, node.id as number, false);
    await stores.close();
    writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });
  }

  const stop = (): void => {
    for (const child of children) child.kill('SIGTERM');
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  children.push(
    await start(
      CONTROL_MAIN,
      [
        '--port',
        values['control-port'],
        '--data-dir',
        join(dataDir, 'control'),
        '--mi-timeout-ms',
        '2000',
        // The demo node's drouting database lives here (the control plane touches node files under its roots only).
        '--node-files-root',
        join(dataDir, 'opensips'),
      ],
      'control plane listening',
    ),
  );
  children.push(
    await start(
      SIDECAR_MAIN,
      [
        '--port',
        values['sidecar-port'],
        '--data-dir',
        join(dataDir, 'sidecar'),
        '--node-name',
        'opensips-demo-01',
        '--control-url',
        controlUrl,
        '--centre-secret-file',
        secretFile,
      ],
      'sidecar listening',
    ),
  );

  const sync = (await (await fetch(`${controlUrl}/api/opensips/routing/sync`, { method: 'POST' })).json()) as {
    snapshot_version: number;
    rules: number;
    gateways: number;
    warnings: string[];
    sidecar_results: { success: boolean; error: string | null }[];
    reload_results: { success: boolean; error: string | null }[];
  };
  // A real route for the examples, so the CDR example names the carrier and gateway the call would take.
  const route = (await (
    await fetch(`${sidecarUrl}/api/opensips/call/route`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ customer_trunk_id: 10001, dnis: '61400123456' }),
    })
  ).json()) as {
    carrier_trunk_id?: number;
    carrier_gateway_id?: number;
  };
  const end = Date.now() - 60_000;
  const post = (base: string, path: string, body: unknown): string =>
    `curl -s ${base}${path} -H 'Content-Type: application/json' -d '${JSON.stringify(body)}'`;
  process.stdout.write(
    [
      '',
      `First sync: snapshot ${sync.snapshot_version}, ${sync.gateways} gateways, ${sync.rules} drouting rules; sidecar push ${sync.sidecar_results[0]?.success ? 'ok' : `failed: ${sync.sidecar_results[0]?.error}`};`,
      `drouting written, reload ${sync.reload_results[0]?.success ? 'ok' : `failed (no OpenSIPS runs here): ${sync.reload_results[0]?.error}`}; warnings: ${sync.warnings.length}.`,
      '',
      'Control plane (admin API):',
      `  curl -s ${controlUrl}/api/health`,
      `  curl -s '${controlUrl}/api/customer-trunks?page=1&page_size=2'`,
      `  ${post(controlUrl, '/api/rate-decks/1/rates', { prefix: '61499', destination_name: 'Australia Mobile (special)', rate_per_minute: '0.0150' })}`,
      `  curl -s -X POST ${controlUrl}/api/opensips/routing/sync`,
      `  curl -s ${controlUrl}/api/balances/customer/1/balance`,
      `  curl -s '${controlUrl}/api/cdrs/search?sip_call_id=demo-1@opensips'`,
      '',
      'Sidecar (what OpenSIPS asks):',
      `  curl -s ${sidecarUrl}/api/health`,
      `  ${post(sidecarUrl, '/api/opensips/call/auth', { source_ip: '100.0.0.1', call_id: 'demo-1@opensips', ani: '61255500100', dnis: '61400123456' })}`,
      `  ${post(sidecarUrl, '/api/opensips/call/route', { customer_trunk_id: 10001, ani: '61255500100', dnis: '61400123456', attempt: 1, tried_carrier_trunk_ids: [] })}`,
      `  ${post(sidecarUrl, '/api/opensips/call/admit', { customer_trunk_id: 10001, dnis: '61400123456', call_id: 'demo-1@opensips' })}`,
      `  ${post(sidecarUrl, '/api/cdrs/ingest', {
        sip_call_id: 'demo-1@opensips',
        customer_trunk_id: 10001,
        carrier_trunk_id: route.carrier_trunk_id ?? 1,
        carrier_gateway_id: route.carrier_gateway_id ?? 1,
        ani: '61255500100',
        dnis: '61400123456',
        start_time: new Date(end - 78_000).toISOString(),
        answer_time: new Date(end - 73_000).toISOString(),
        end_time: new Date(end).toISOString(),
        duration_seconds: 73,
        sip_response_code: 200,
      })}`,
      `  ${post(sidecarUrl, '/api/lcr/lookup', { customer_trunk_id: 10001, dnis: '61400123456' })}`,
      `  ${post(sidecarUrl, '/api/admin/route-simulator', { customer_trunk_id: 10001, ani: '61255500100', dnis: '61400123456', duration_seconds: 73 })}`,
      `  curl -s ${sidecarUrl}/metrics`,
      '',
      'Ctrl-C stops both.',
      '',
    ].join('\n'),
  );
}

main().catch((error: unknown) => {
  // fetch's own message is only "fetch failed": what failed is its cause.
  const cause = error instanceof Error && error.cause instanceof Error ? ` (${error.cause.message})` : '';
  process.stderr.write(`demo stack failed: ${error instanceof Error ? error.message : String(error)}${cause}\n`);
  // The services started so far would keep their ports, and the next `make run` would fail on them.
  for (const child of children) child.kill('SIGTERM');
  process.exit(1);
});
