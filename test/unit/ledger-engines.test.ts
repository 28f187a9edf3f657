import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Decimal } from '../../src/core/money/decimal.js';
import { MAX_MICRO_TEXT, parseMicro } from '../../src/core/money/micro.js';
import { openLedgerWorld, settledCall, type LedgerWorld } from '../../src/devkit/ledger-world.js';
import pg from 'pg';
import { getRow } from '../../sync/ledger/sql-steps.js';
import { postgresUnreachable, scratchSchema, type ScratchSchema } from '../helpers/postgres.js';

/**
 * The ledger's guarantees, the same cases on both engines: SQLite (one write lock) and PostgreSQL (READ
 * COMMITTED with the round's row locks, sync/ledger/pg-store.ts). The PostgreSQL half is skipped only
 * when the server does not answer.
 */
const unreachable = await postgresUnreachable();
const NODES = ['node-a', 'node-b', 'node-c'];
const PREPAID = 1;
const cdr = (callId: string, charge: string) => settledCall(callId, PREPAID, charge);

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`the ledger on ${engine}`, { skip: engine === 'postgres' ? (unreachable ?? false) : false }, () => {
    let world: LedgerWorld;
    let scratch: ScratchSchema | null = null;
    const round: LedgerWorld['round'] = (node, body, resend) => world.round(node, body, resend);
    const fund = (amount: string) => world.fund(PREPAID, amount);
    const balance = () => world.handle.ledger.getBalance('customer', PREPAID);
    /** Every node's lease on the account handed back, so a case starts with the whole balance as headroom. */
    const giveAllBack = async () => {
      for (const node of NODES) {
        const held = (await world.handle.ledger.leasesOf('customer', PREPAID)).find((lease) => lease.node === node)?.amount ?? '0';
        await round(node, { settlements: [], leases: [{ entity_type: 'customer', entity_id: PREPAID, want: '0', give_back: held }] });
      }
    };

    before(async () => {
      scratch = engine === 'postgres' ? await scratchSchema('ledger_engines') : null;
      const location = scratch?.url ?? `sqlite:${join(mkdtempSync(join(tmpdir(), 'ledger-engines-')), 'config.db')}`;
      world = await openLedgerWorld(location, NODES, [PREPAID]);
    });

    after(async () => {
      await world.close();
      await scratch?.drop();
    });

    it('settles a round: the CDR debits the account, out of the node lease, and the ask is leased out of the headroom', async () => {
      await fund('10.00');
      const granted = await round('node-a', {
        settlements: [],
        leases: [{ entity_type: 'customer', entity_id: PREPAID, want: '4', give_back: '0' }],
      });
      assert.equal(granted.leases[0].granted, '4');
      const reply = await round('node-a', { settlements: [cdr('call-1', '1.5')], leases: [] });
      assert.deepEqual(reply.settled, ['call-1']);
      assert.equal(reply.leases[0].granted, '2.5');
      const after = await balance();
      assert.equal(after.balance, '8.50');
      assert.equal(after.reserved, '2.50');
      await giveAllBack();
    });

    it('bills a CDR once, whichever round and node brings it again', async () => {
      const before = await balance();
      await round('node-b', { settlements: [cdr('call-2', '1'), cdr('call-2', '1')], leases: [] });
      await round('node-b', { settlements: [cdr('call-2', '1')], leases: [] });
      // Three nodes' rounds bringing one new CDR at the same moment (on PostgreSQL the second insert waits for
      // the first's round and, once it commits, skips the CDR: ON CONFLICT DO NOTHING).
      for (let n = 0; n < 5; n++)
        await Promise.all(NODES.map((node) => round(node, { settlements: [cdr(`call-2-${n}`, '1')], leases: [] })));
      assert.equal((await balance()).balance, new Decimal(before.balance).minus(6).toFixed(2));
      const rows = await world.handle.ledger.searchCdrs({
        startFrom: null,
        startTo: null,
        customerTrunkId: null,
        carrierTrunkId: null,
        sipCallId: null,
        limit: 10,
        offset: 0,
      });
      const calls = rows.map((row) => String(row.sip_call_id)).filter((id) => id.startsWith('call-2'));
      assert.deepEqual(calls.sort(), ['call-2', 'call-2-0', 'call-2-1', 'call-2-2', 'call-2-3', 'call-2-4']);
    });

    it('bills CDRs once when two nodes bring the same new ones at once, in opposite orders', async () => {
      const before = await balance();
      // The CDRs go in before a round locks its balances, so two such rounds insert at the same moment, each
      // waiting on the call ids the other took first (PostgreSQL: sent in opposite orders, they deadlocked in 12
      // of 20 pairs of 300-CDR rounds, each a second's stall and a round run again, before the insert was sorted).
      for (let n = 0; n < 5; n++) {
        const calls = Array.from({ length: 100 }, (_, i) => cdr(`twice-${n}-${String(i).padStart(3, '0')}`, '0.01'));
        const replies = await Promise.all([
          round('node-a', { settlements: calls, leases: [] }),
          round('node-b', { settlements: [...calls].reverse(), leases: [] }),
        ]);
        assert.deepEqual(
          replies[0].settled,
          calls.map((call) => call.sip_call_id),
        );
      }
      assert.equal((await balance()).balance, new Decimal(before.balance).minus(5 * 100 * 0.01).toFixed(2));
    });

    it("keeps a CDR's text as the node sent it, whatever characters a Call-ID holds, and bills it once", async () => {
      const before = await balance();
      // SIP allows quotes and backslashes in a Call-ID; braces, commas and the word NULL mean something in an
      // array's text, which is how PostgreSQL receives a round's columns.
      const odd = ['q"uote-1', 'back\\slash-1', '{brace,comma}-1', 'NULL', ' spaced "\\" -1'];
      const sent = odd.map((callId, i) => ({ ...cdr(callId, '0.5'), ani: `ani"${i}\\`, uncovered: i % 2 === 0 ? null : '0.01' }));
      const reply = await round('node-a', { settlements: sent, leases: [] });
      assert.deepEqual(reply.settled, odd);
      await round('node-b', { settlements: sent, leases: [] });
      assert.equal((await balance()).balance, new Decimal(before.balance).minus(2.5).toFixed(2));
      for (const [i, callId] of odd.entries()) {
        const [row] = await world.handle.ledger.searchCdrs({
          startFrom: null,
          startTo: null,
          customerTrunkId: null,
          carrierTrunkId: null,
          sipCallId: callId,
          limit: 10,
          offset: 0,
        });
        assert.equal(row.ani, `ani"${i}\\`);
        assert.equal(row.uncovered, i % 2 === 0 ? null : '0.01');
      }
      await giveAllBack();
    });

    it('bills each call that used one Call-ID (another start: another node, or the same one after its prune), each once', async () => {
      await giveAllBack();
      await fund('20.00');
      const before = await balance();
      const callAt = (start: string, charge: string) => ({
        ...cdr('reused@carrier', charge),
        start_time: start,
        answer_time: start,
        end_time: new Date(Date.parse(start) + 60_000).toISOString(),
      });
      const first = callAt('2026-12-01T10:00:00.000Z', '1');
      const onAnotherNode = callAt('2026-12-01T10:30:00.000Z', '2');
      const afterPrune = callAt('2026-12-01T12:00:00.000Z', '4');
      // Two calls under the Call-ID in one round: a node holds one CDR a Call-ID, but the centre does not lean on it.
      const twoInOneRound = [callAt('2026-12-02T09:00:00.000Z', '0.5'), callAt('2026-12-02T09:05:00.000Z', '0.25')];
      assert.deepEqual((await round('node-a', { settlements: [first], leases: [] })).settled, ['reused@carrier']);
      assert.deepEqual((await round('node-b', { settlements: [onAnotherNode], leases: [] })).settled, ['reused@carrier']);
      await round('node-a', { settlements: [afterPrune], leases: [] });
      await round('node-b', { settlements: twoInOneRound, leases: [] });
      assert.equal((await balance()).balance, new Decimal(before.balance).minus(7.75).toFixed(2), 'every call billed');

      // Resends: by the node that sent each, by another node (a CDR rated again after its node pruned it is the
      // same call), and one with other figures (the node refuses those, cdr_conflict; the centre keeps the first):
      // each answered settled, none billed again.
      const resent = await round('node-c', {
        settlements: [first, { ...onAnotherNode, account_charge: '9', customer_cost: '9' }, afterPrune, ...twoInOneRound],
        leases: [],
      });
      assert.deepEqual(resent.settled, Array(5).fill('reused@carrier'));
      await round('node-a', { settlements: [first, afterPrune], leases: [] });
      await round('node-b', { settlements: [onAnotherNode, ...twoInOneRound], leases: [] });
      assert.equal((await balance()).balance, new Decimal(before.balance).minus(7.75).toFixed(2), 'no call billed twice');

      const found = await world.handle.ledger.searchCdrs({
        startFrom: null,
        startTo: null,
        customerTrunkId: null,
        carrierTrunkId: null,
        sipCallId: 'reused@carrier',
        limit: 10,
        offset: 0,
      });
      assert.deepEqual(
        found.map((row) => [row.start_time, row.account_charge, row.node]),
        [
          ['2026-12-02T09:05:00.000Z', '0.25', 'node-b'],
          ['2026-12-02T09:00:00.000Z', '0.5', 'node-b'],
          ['2026-12-01T12:00:00.000Z', '4', 'node-a'],
          ['2026-12-01T10:30:00.000Z', '2', 'node-b'],
          ['2026-12-01T10:00:00.000Z', '1', 'node-a'],
        ],
      );
      // Each CDR names the debit row that charged it: the last round's one row for both its calls.
      assert.equal(new Set(found.map((row) => Number(row.debit_transaction_id))).size, 4);
      await giveAllBack();
    });

    it('writes one debit row per account per round, each CDR naming it, the rows listed in the order they were applied', async () => {
      await giveAllBack();
      await fund('30.00');
      const before = await balance();
      const earlier = (await world.handle.ledger.listTransactions('customer', PREPAID, 1, 0)).total;
      // Three nodes at once, each round three CDRs, one of them brought by every node (billed once), and a lease
      // ask: a round's debit id is taken before it locks the balance, its lease rows' after (PostgreSQL), so the
      // ids of rounds racing for the balance come out of the order the rows were applied in; the list must not.
      for (let n = 0; n < 6; n++)
        await Promise.all(
          NODES.map((node) =>
            round(node, {
              settlements: [cdr(`rows-${n}-${node}-a`, '0.25'), cdr(`rows-${n}-${node}-b`, '0.5'), cdr(`rows-${n}-shared`, '1')],
              leases: [{ entity_type: 'customer', entity_id: PREPAID, want: '0.01', give_back: n % 2 === 0 ? '0' : '0.01' }],
            }),
          ),
        );
      const cdrs = (
        await world.handle.ledger.searchCdrs({
          startFrom: null,
          startTo: null,
          customerTrunkId: null,
          carrierTrunkId: null,
          sipCallId: null,
          limit: 1000,
          offset: 0,
        })
      ).filter((row) => String(row.sip_call_id).startsWith('rows-'));
      assert.equal(cdrs.length, 6 * 7);
      const list = await world.handle.ledger.listTransactions('customer', PREPAID, 1000, 0);
      const rows = list.rows.slice(0, list.total - earlier).reverse();
      assert.equal(rows.filter((row) => row.transaction_type === 'debit').length, 18, 'one debit row per round');
      // Each debit row is the total of the CDRs naming it, and every row's balance after it is the one after the
      // row listed before it, less that total for a debit (a lease's rows leave the balance as it was).
      let running = new Decimal(before.balance);
      for (const row of rows) {
        if (row.transaction_type === 'debit') {
          const named = cdrs.filter((cdr) => Number(cdr.debit_transaction_id) === Number(row.id));
          assert.ok(named.length === 2 || named.length === 3, `row ${String(row.id)} names ${named.length} CDRs`);
          const total = named.reduce((sum, cdr) => sum.plus(String(cdr.account_charge)), new Decimal(0));
          assert.equal(new Decimal(String(row.amount)).toFixed(6), total.toFixed(6));
          assert.match(String(row.description), new RegExp(`^${named.length} calls \\(node ${String(named[0].node)}, round \\d+\\)$`));
          running = running.minus(total);
        } else assert.ok(['reserve', 'release'].includes(String(row.transaction_type)), String(row.transaction_type));
        assert.equal(new Decimal(String(row.balance_after)).toFixed(6), running.toFixed(6), 'the rows chain in the order listed');
      }
      assert.equal(new Decimal((await balance()).balance).toFixed(6), running.toFixed(6));
      assert.equal(running.toFixed(2), new Decimal(before.balance).minus(6 * (3 * 0.75 + 1)).toFixed(2));
      await giveAllBack();
    });

    it('answers a resent round with its first answer and applies nothing again', async () => {
      const body = {
        settlements: [cdr('call-3', '0.5')],
        leases: [{ entity_type: 'customer' as const, entity_id: PREPAID, want: '1', give_back: '0' }],
      };
      const first = await round('node-c', body);
      const after = await balance();
      const { total } = await world.handle.ledger.listTransactions('customer', PREPAID, 1, 0);
      const again = await round('node-c', body, true);
      assert.deepEqual(again, first);
      assert.deepEqual(await balance(), after);
      assert.equal((await world.handle.ledger.listTransactions('customer', PREPAID, 1, 0)).total, total);
      await giveAllBack();
    });

    it('names the nodes holding lease on an account (whom a short ask recalls), and no others', async () => {
      await giveAllBack();
      await round('node-b', { settlements: [], leases: [{ entity_type: 'customer', entity_id: PREPAID, want: '1', give_back: '0' }] });
      assert.deepEqual(await world.handle.ledger.run((tx) => tx.leaseHolders('customer', PREPAID)), ['node-b']);
      await giveAllBack();
      assert.deepEqual(await world.handle.ledger.run((tx) => tx.leaseHolders('customer', PREPAID)), []);
    });

    it('never leases the same headroom twice to rounds of different nodes at the same moment', async () => {
      for (let attempt = 0; attempt < 5; attempt++) {
        const funds = await balance();
        const headroom = new Decimal(funds.balance).minus(funds.reserved);
        const ask = { settlements: [], leases: [{ entity_type: 'customer' as const, entity_id: PREPAID, want: '100', give_back: '0' }] };
        const replies = await Promise.all([round('node-a', ask), round('node-b', ask)]);
        const granted = replies.map((reply) => reply.leases[0].granted);
        const total = granted.reduce((sum, amount) => sum.plus(amount), new Decimal(0));
        assert.ok(total.equals(headroom), `granted ${granted.join(' + ')} of ${headroom.toFixed()}`);
        const leases = await world.handle.ledger.leasesOf('customer', PREPAID);
        const held = leases.reduce((sum, lease) => sum.plus(lease.amount), new Decimal(0));
        assert.ok(held.equals((await balance()).reserved), 'reserved is the sum of the leases');
        assert.ok(held.equals(headroom), `leases ${held.toFixed()} of ${headroom.toFixed()}`);
        await giveAllBack();
      }
    });

    it("tells a node a headroom past what it reads (10^9) as the most it reads: plenty, not unknown, and the ledger's own figures whole", async () => {
      const before = await balance();
      const ask = { settlements: [], leases: [{ entity_type: 'customer' as const, entity_id: PREPAID, want: '4', give_back: '0' }] };
      for (const funds of ['999999999.999999', '1000000000', '5000000000000.25', '999999999999999.99']) {
        await fund(funds);
        const reply = await round('node-a', ask);
        assert.equal(reply.leases[0].granted, '4');
        // What the node then reads (it read NaN, "no headroom known", and asked for a round on every admission).
        assert.equal(
          reply.leases[0].headroom,
          new Decimal(funds).minus(4).greaterThan(MAX_MICRO_TEXT) ? MAX_MICRO_TEXT : new Decimal(funds).minus(4).toFixed(),
        );
        assert.ok(Number.isFinite(parseMicro(reply.leases[0].headroom)), reply.leases[0].headroom);
        assert.equal((await balance()).balance, funds, 'the balance itself is kept whole');
        await giveAllBack();
      }
      await fund(before.balance);
    });

    // Each round trip waits twice for a core on a loaded machine (the server's, then the event loop's): a round
    // sends its BEGIN with its opening reads, its CDRs' insert with its balances' lock, its writes with its COMMIT.
    it(
      'settles a round with CDRs and a lease ask in three round trips (PostgreSQL)',
      { skip: engine === 'sqlite' ? 'SQLite: in process, no round trips' : false },
      async () => {
        await fund('10.00');
        // Not the node's first round (that one makes its round row, after the node is known: node-round.ts).
        await round('node-a', { settlements: [], leases: [] });
        const client = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
        const query = client.query;
        let sent = 0;
        client.query = function (this: unknown, ...args: unknown[]) {
          sent++;
          return query.apply(this, args);
        };
        try {
          const reply = await round('node-a', {
            settlements: [cdr('call-trips-1', '0.5'), cdr('call-trips-2', '0.25')],
            leases: [{ entity_type: 'customer', entity_id: PREPAID, want: '1', give_back: '0' }],
          });
          assert.deepEqual(reply.settled, ['call-trips-1', 'call-trips-2']);
        } finally {
          client.query = query;
        }
        assert.equal(sent, 3);
        await giveAllBack();
      },
    );

    // A round's locks go at its commit record, before the flush (pg-store.ts UNLOCK_BEFORE_FLUSH); its answer
    // must still wait for the flush, and the connection go back to the pool committing synchronously.
    it(
      'answers a round only once its commit is on disk (PostgreSQL: its locks released before the flush)',
      {
        skip: engine === 'sqlite' ? 'SQLite: the route awaits its group fdatasync' : false,
      },
      async () => {
        for (let n = 0; n < 20; n++) {
          let beforeCommit = '';
          await world.handle.ledger.run(
            function* (tx) {
              yield* tx.lockRound('node-c');
              yield* tx.setLease('node-c', 'customer', PREPAID, '0');
              beforeCommit = (yield* getRow<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn'))!.lsn;
            },
            { unlockBeforeFlush: true },
          );
          const after = await world.handle.ledger.read(
            getRow<{ flushed: boolean; mode: string }>(
              "SELECT pg_current_wal_flush_lsn() > ?::pg_lsn AS flushed, current_setting('synchronous_commit') AS mode",
              beforeCommit,
            ),
          );
          assert.deepEqual(after, { flushed: true, mode: 'on' });
        }
      },
    );
  });
}
