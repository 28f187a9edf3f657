import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { Decimal } from '../../src/core/money/decimal.js';
import { forEachEngine } from '../helpers/engines.js';
import { SidecarProcess } from '../helpers/sidecar.js';
import { eventually, startMoneyWorld, type MoneyWorld } from '../helpers/money-world.js';

/**
 * kill -9 in the middle of a stream of admissions and CDRs: after restart,
 * every acknowledged admission is still held (a repeat gets the same answer),
 * every acknowledged CDR is still there (a resend is a duplicate), and the
 * centre bills each call once.
 */
const MOBILE = '61400123456';
const START = Date.parse('2026-01-15T08:30:00Z');
const cdrFor = (callId: string, duration: number) => ({
  sip_call_id: callId,
  customer_trunk_id: 10,
  carrier_trunk_id: 20,
  carrier_gateway_id: 201,
  ani: '61255500100',
  dnis: MOBILE,
  start_time: new Date(START).toISOString(),
  answer_time: new Date(START).toISOString(),
  end_time: new Date(START + duration * 1000).toISOString(),
  duration_seconds: duration,
  sip_response_code: 200,
});

// The node's --durability is its own journal's, which the centre's store does not touch: the PostgreSQL copy
// (the centre settling the restarted node's resends) runs with one of them, keeping the suite's time down.
for (const durability of ['normal', 'full'] as const)
  forEachEngine(
    `money path: kill -9 mid-stream (durability ${durability})`,
    (engine) => {
      let world: MoneyWorld;
      let restarted: SidecarProcess | null = null;
      before(async () => {
        world = await startMoneyWorld({
          engine,
          sidecars: 1,
          sidecarArgs: ['--admission-seconds', '120', '--lease-chunk', '5.00', '--durability', durability],
          // A third of the calls stay up: more than trunk 10's 30 ports, which this test is not about.
          change: (description) => {
            description.customer_trunks.find((trunk) => trunk.id === 10)!.port_limit = 10_000;
          },
        });
        assert.equal((await world.control.post('/api/balances/customer/1/balance/credit', { amount: '100.00' })).status, 200);
      });
      after(async () => {
        await Promise.all([world.stop(), restarted?.kill()]);
      });

      it('keeps every acknowledged admission and CDR, and bills nothing twice', async () => {
        const node = world.sidecars[0];
        const admits = new Map<string, unknown>();
        const cdrs = new Map<string, { figures: ReturnType<typeof cdrFor>; result: unknown }>();
        /** Calls whose CDR was sent, acknowledged or not (the node may have died with it written but unanswered). */
        const ended = new Set<string>();
        let stop = false;
        const worker = async (id: number): Promise<void> => {
          for (let i = 0; !stop; i++) {
            const callId = `k${id}-${i}@durability`;
            try {
              const admit = await node.post('/api/opensips/call/admit', { customer_trunk_id: 10, dnis: MOBILE, call_id: callId });
              if (!admit.body.allowed) continue;
              admits.set(callId, admit.body);
              if (i % 3 === 2) continue; // a third of the calls are still up when the node dies
              const figures = cdrFor(callId, 1 + ((id * 7 + i) % 90));
              ended.add(callId);
              const ingested = await node.post('/api/cdrs/ingest', figures);
              if (ingested.status === 201) cdrs.set(callId, { figures, result: ingested.body });
            } catch {
              return; // the node is gone: this request was never acknowledged
            }
          }
        };
        const workers = Array.from({ length: 12 }, (_, id) => worker(id));
        // Kill once the stream is well under way (by count, not by time: a slow machine only takes longer).
        while (admits.size < 120 || cdrs.size < 60) await new Promise((resolve) => setTimeout(resolve, 20));
        await node.kill('SIGKILL');
        stop = true;
        await Promise.all(workers);

        restarted = await SidecarProcess.start({ dataDir: node.dataDir, args: world.sidecarArgs(0) });
        // A live call's admission repeated gets its first answer; an ended call's Call-ID is refused as reused,
        // which the node can only say if it kept the reservation and its end.
        for (const [callId, answer] of admits) {
          const again = await restarted.post('/api/opensips/call/admit', { customer_trunk_id: 10, dnis: MOBILE, call_id: callId });
          const reused = (again.body as { reason_code?: string }).reason_code === 'call_id_reused';
          if (cdrs.has(callId)) assert.ok(reused, `admission of ${callId}, ended, after restart: ${JSON.stringify(again.body)}`);
          else if (!(reused && ended.has(callId))) assert.deepEqual(again.body, answer, `admission of ${callId} after restart`);
        }
        // Every acknowledged CDR, resent with the figures it was acknowledged with, is a duplicate now.
        for (const [callId, { figures, result }] of cdrs) {
          const resent = await restarted.post('/api/cdrs/ingest', figures);
          assert.equal(resent.status, 200, `${callId}: ${JSON.stringify(resent.body)}`);
          assert.deepEqual(resent.body, result);
        }

        await eventually(async () => {
          const billed = (await world.control.get('/api/cdrs/search?customer_trunk_id=10&limit=1000')).body as {
            sip_call_id: string;
            account_charge: string;
            debit_transaction_id: number;
          }[];
          for (const callId of cdrs.keys())
            assert.ok(
              billed.some((row) => row.sip_call_id === callId),
              `${callId} billed at the centre`,
            );
          assert.equal(new Set(billed.map((row) => row.sip_call_id)).size, billed.length);
          const total = billed.reduce((sum, row) => sum.plus(row.account_charge), new Decimal(0));
          const state = (await world.control.get('/api/balances/customer/1/balance')).body;
          assert.equal(new Decimal(state.balance).toFixed(6), new Decimal(100).minus(total).toFixed(6));
          // One debit row per account per round: each CDR names the row that charged it, and each row is its CDRs' total.
          const debits = (
            (await world.control.get('/api/balances/customer/1/transactions?page_size=1000')).body.data as {
              id: number;
              transaction_type: string;
              amount: string;
            }[]
          ).filter((row) => row.transaction_type === 'debit');
          const charged = new Map<number, Decimal>();
          for (const row of billed)
            charged.set(row.debit_transaction_id, (charged.get(row.debit_transaction_id) ?? new Decimal(0)).plus(row.account_charge));
          assert.deepEqual(
            debits.map((row) => [row.id, new Decimal(row.amount).toFixed(6)]).sort((a, b) => Number(a[0]) - Number(b[0])),
            [...charged].map(([id, sum]) => [id, sum.toFixed(6)]).sort((a, b) => Number(a[0]) - Number(b[0])),
          );
        }, 15_000);
      });
    },
    { only: durability === 'full' ? 'sqlite' : undefined },
  );
