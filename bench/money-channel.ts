/**
 * Money on the live channel (issue 18): a top-up through the admin API until a call is admitted on each of
 * 3 sidecars, and a debit that needs the nodes' leases recalled, p50/p99.
 *
 * Each round: the prepaid account is empty and every node has just refused a call on it; the operator credits
 * it, and the clock runs from the credit's 2xx until each sidecar has admitted a call (each polled with fresh
 * Call-IDs; the figure is the slowest of the three). The calls are released, and the operator debits the whole
 * balance: the nodes hold it in leases, so the debit recalls them over the channel before it succeeds; its
 * figure is the debit's own request time. Nodes never return idle lease meanwhile (--lease-idle-seconds 3600).
 *
 *   node dist/bench/money-channel.js [--size small] [--rounds 50] [--top-up 100.00]
 *
 * Needs an idle machine for figures worth quoting; a busy one gives an upper bound.
 */
import { benchArgs } from './bench-args.js';
import type { ServiceProcess } from '../src/devkit/service-process.js';
import { medianAndTail, send, startLiveWorld } from './live-world.js';

/** p50 and p99 of a list of milliseconds, to a tenth. */
function summarise(ms: number[]): { count: number; p50_ms: number; p99_ms: number } {
  return { count: ms.length, ...medianAndTail(ms) };
}

async function main(): Promise<void> {
  const { values } = benchArgs({
    options: {
      size: { type: 'string', default: 'small' },
      rounds: { type: 'string', default: '50' },
      'top-up': { type: 'string', default: '100.00' },
    },
  });
  const rounds = Number(values.rounds);
  const { base, sidecars, dataset, stop } = await startLiveWorld(values.size, 3, ['--lease-idle-seconds', '3600']);

  // A caller on an active trunk of a prepaid account (held to its balance).
  const accounts = new Map(dataset.tables.customer_accounts.map((account) => [account.id, account]));
  const trunks = new Map(dataset.tables.customer_trunks.map((trunk) => [trunk.id, trunk]));
  const caller = dataset.traffic.callers.find(([, , trunkId]) => {
    const trunk = trunks.get(trunkId);
    return trunk?.status === 'active' && accounts.get(trunk.customer_account_id)?.billing_mode === 'prepaid';
  });
  if (caller === undefined) throw new Error('the dataset has no caller on a prepaid account');
  const [sourceIp, techPrefix, trunkId] = caller;
  const accountId = trunks.get(trunkId)!.customer_account_id;
  const balanceUrl = `${base}/api/balances/customer/${accountId}/balance`;
  const node = (sidecar: ServiceProcess, path: string, body: unknown) => send(`http://127.0.0.1:${sidecar.port}${path}`, 'POST', body);
  const auth = await node(sidecars[0], '/api/opensips/call/auth', {
    source_ip: sourceIp,
    call_id: 'bench@money',
    ani: '61255501000',
    dnis: `${techPrefix}${dataset.traffic.numbers[0]}`,
  });
  if (auth.allowed !== true) throw new Error(`call/auth refused the bench's caller: ${JSON.stringify(auth)}`);
  let calls = 0;
  const admit = async (sidecar: ServiceProcess): Promise<string | null> => {
    const callId = `bench-${++calls}@money`;
    const answer = await node(sidecar, '/api/opensips/call/admit', { customer_trunk_id: trunkId, dnis: auth.dnis, call_id: callId });
    return answer.allowed === true ? callId : null;
  };

  const topUp: number[] = [];
  const perNode: number[] = [];
  const debit: number[] = [];
  let recalledDebits = 0;
  for (let round = 0; round < rounds; round++) {
    for (const sidecar of sidecars) if ((await admit(sidecar)) !== null) throw new Error('admitted on an empty account');
    await send(`${balanceUrl}/credit`, 'POST', { amount: values['top-up'] });
    const started = performance.now();
    const admitted = await Promise.all(
      sidecars.map(async (sidecar) => {
        for (;;) {
          const callId = await admit(sidecar);
          if (callId !== null) {
            perNode.push(performance.now() - started);
            return callId;
          }
        }
      }),
    );
    topUp.push(performance.now() - started);
    for (const [index, callId] of admitted.entries()) await node(sidecars[index], '/api/opensips/call/release', { call_id: callId });

    const before = (await send(balanceUrl, 'GET')) as { balance: string; reserved: string };
    if (!/^0+(\.0+)?$/.test(before.reserved)) recalledDebits++;
    const debitStarted = performance.now();
    await send(`${balanceUrl}/debit`, 'POST', { amount: before.balance });
    debit.push(performance.now() - debitStarted);
    const after = (await send(balanceUrl, 'GET')) as { balance: string; reserved: string };
    if (!/^0+(\.0+)?$/.test(after.balance)) throw new Error(`the balance is not exactly zero after the debit: ${JSON.stringify(after)}`);
  }
  const summary = {
    top_up_admitted_on_all_3: summarise(topUp),
    top_up_admitted_per_node: summarise(perNode),
    debit_with_recall: { ...summarise(debit), debits_that_found_leases: recalledDebits },
  };
  process.stdout.write(`${JSON.stringify({ size: values.size, sidecars: 3, top_up: values['top-up'], summary }, null, 2)}\n`);
  stop();
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
