import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { Decimal } from '../../src/core/money/decimal.js';
import { MOBILE, trunk10Cdr } from '../helpers/cdrs.js';
import { forEachEngine } from '../helpers/engines.js';
import { eventually, type MoneyWorld } from '../helpers/money-world.js';
import { SidecarProcess } from '../helpers/sidecar.js';
import { startPartnerWorld, type PartnerWorld } from '../helpers/partner-world.js';
import { storeRows } from '../helpers/store-rows.js';

/**
 * Issue 19's call path end to end, with real processes: a control plane serving the partner API (tokens from a
 * local JWKS file) and a node's sidecar. A partner sets up a call; after a routing sync the caller dials the
 * product's access number from the fixture world's trunk 10 network; call/decide routes it to the translated
 * number on the product's trunk, admitted against the retail account; its CDR is rated and settled to the
 * account, shows in call_history, and the balance is down by exactly the rated cost. Unknown callers, expired
 * translations, exhausted and deactivated accounts are refused. The centre's store on SQLite and on PostgreSQL
 * (a database of its own; skipped only when the server does not answer).
 */
const ACCESS_NUMBER = '61280000000';

forEachEngine(
  'calls through a partner access number',
  (engine) => {
    let world: MoneyWorld;
    let partner: PartnerWorld['partner'];
    let account: PartnerWorld['account'];
    let productId: number;

    before(async () => {
      ({ world, partner, account, productId } = await startPartnerWorld(ACCESS_NUMBER, 1, engine));
      const node = await world.control.send('PUT', '/api/opensips-nodes/1', { sidecar_address: world.sidecars[0].url });
      assert.equal(node.status, 200, JSON.stringify(node.body));
    });

    let restarted: SidecarProcess | null = null;
    after(async () => {
      await Promise.all([(world as MoneyWorld | undefined)?.stop(), restarted?.kill()]);
    });

    const setup = async (code: string, caller: string, ttl = 600): Promise<void> => {
      const saved = await partner('setup_call', {
        a_number: `+${caller}`,
        b_number: `+${MOBILE}`,
        access_number: `+${ACCESS_NUMBER}`,
        account_number: code,
        ttl,
      });
      assert.equal(saved.status, 200, saved.text);
    };

    /** A routing sync, checked to have reached the node: these tests take translations by snapshot (partner-live.test.ts: by delta). */
    const sync = async (): Promise<void> => {
      const report = await world.control.post('/api/opensips/routing/sync', {});
      const pushed = (report.body.sidecar_results as { hostname: string; success: boolean }[]).find((entry) => entry.hostname === 'node-1');
      assert.ok(pushed?.success, JSON.stringify(report.body));
    };

    /** OpenSIPS's INVITE from trunk 10's network to the access number, decided in one request. */
    const dial = async (caller: string, callId: string): Promise<any> => {
      const decided = await world.sidecars[0].post('/api/opensips/call/decide', {
        source_ip: '203.0.113.77',
        call_id: callId,
        ani: caller,
        dnis: ACCESS_NUMBER,
        ruri: `sip:${ACCESS_NUMBER}@203.0.113.5`,
        from: `<sip:${caller}@203.0.113.77>;tag=a1`,
        to: `<sip:${ACCESS_NUMBER}@203.0.113.5>`,
        pai: `<sip:${caller}@203.0.113.77>`,
      });
      assert.equal(decided.status, 200, JSON.stringify(decided.body));
      return decided.body;
    };

    const balance = async (code: string): Promise<string> => {
      const reply = await partner('get_balance', { account: code });
      assert.equal(reply.status, 200, reply.text);
      return /"total_balance":(-?[0-9.]+)/.exec(reply.text)![1];
    };

    it('routes a translated call on the product trunk, bills the retail account exactly, and lists it in call_history', async () => {
      const code = await account(5);
      const caller = '61255500111';
      await setup(code, caller);
      await sync();

      const decided = await dial(caller, 'retail-call-1@test');
      assert.equal(decided.allowed, true, JSON.stringify(decided));
      assert.equal(decided.auth.customer_trunk_id, 10);
      assert.equal(decided.auth.dnis, MOBILE, 'routed to the translated number');
      assert.ok(Number.isSafeInteger(decided.auth.retail_account_id));
      assert.equal(decided.route.allowed, true, JSON.stringify(decided.route));

      const cdr = trunk10Cdr('retail-call-1@test', 73, { startMs: Date.now() - 90_000 }, { ani: caller });
      const ingested = await world.sidecars[0].post('/api/cdrs/ingest', cdr);
      assert.equal(ingested.status, 201, JSON.stringify(ingested.body));
      const cost = ingested.body.customer_cost as string;
      assert.ok(new Decimal(cost).greaterThan(0), cost);

      await eventually(async () => {
        const history = await partner('call_history', { account: code });
        assert.equal(history.status, 200, history.text);
        assert.equal(history.body.calls.length, 1, history.text);
        assert.equal(history.body.calls[0].called_number, MOBILE);
        assert.equal(history.body.calls[0].duration_seconds, 78, 'billed in 6/6 increments');
        assert.ok(history.text.includes(`"amount_charged":${cost}`), `${history.text} shows ${cost}`);
      }, 20_000);
      // Down by exactly the rated cost once the node has settled (its lease returned or not, the balance is what was spent).
      await eventually(async () => {
        const shown = await balance(code);
        assert.ok(new Decimal(shown).equals(new Decimal(5).minus(cost)), `balance ${shown}, 5 less ${cost}`);
      }, 20_000);
    });

    it('refuses an unknown caller, an expired translation, an exhausted balance and a deactivated account', async () => {
      const rich = await account(5);
      const poor = await account(null);
      const closing = await account(5);
      await setup(rich, '61255500211', 1);
      await setup(poor, '61255500311');
      await setup(closing, '61255500411');
      await sync();

      const unknown = await dial('61255500999', 'retail-unknown@test');
      assert.deepEqual(
        [unknown.allowed, unknown.stage, unknown.reason_code, unknown.reject_code],
        [false, 'auth', 'no_call_translation', 404],
      );
      const exhausted = await dial('61255500311', 'retail-poor@test');
      assert.deepEqual(
        [exhausted.allowed, exhausted.stage, exhausted.reason_code, exhausted.reject_code],
        [false, 'admit', 'insufficient_balance', 402],
      );
      // The contract's separate endpoints, as a script without call/decide asks them: call/auth names the retail
      // account, call/admit given it reserves against it (trunk 10's own account has the money; the retail one not).
      assert.equal((await world.control.post('/api/balances/customer/1/balance/credit', { amount: '10.00' })).status, 200);
      const auth = await world.sidecars[0].post('/api/opensips/call/auth', {
        source_ip: '203.0.113.77',
        call_id: 'retail-separate@test',
        ani: '61255500311',
        dnis: ACCESS_NUMBER,
      });
      assert.deepEqual([auth.body.allowed, auth.body.customer_trunk_id, auth.body.dnis], [true, 10, MOBILE], JSON.stringify(auth.body));
      const admit = (retail: number | undefined) =>
        world.sidecars[0].post('/api/opensips/call/admit', {
          customer_trunk_id: 10,
          dnis: MOBILE,
          call_id: 'retail-separate@test',
          ...(retail === undefined ? {} : { retail_account_id: retail }),
        });
      const separate = await admit(auth.body.retail_account_id as number);
      assert.deepEqual([separate.body.allowed, separate.body.reason_code], [false, 'insufficient_balance'], JSON.stringify(separate.body));
      const wholesale = await admit(undefined);
      assert.equal(wholesale.body.allowed, true, 'the same call as a wholesale one is admitted on the trunk account');
      assert.equal((await world.sidecars[0].post('/api/opensips/call/release', { call_id: 'retail-separate@test' })).status, 200);

      const live = await dial('61255500411', 'retail-closing@test');
      assert.equal(live.allowed, true, JSON.stringify(live));
      assert.equal((await world.sidecars[0].post('/api/opensips/call/release', { call_id: 'retail-closing@test' })).status, 200);

      // The one-second translation: refused once it has expired, even before another sync.
      const translationEnds = Date.now() + 1_000;
      await eventually(() => Promise.resolve(assert.ok(Date.now() > translationEnds)), 5_000);
      const expired = await dial('61255500211', 'retail-expired@test');
      assert.deepEqual([expired.allowed, expired.stage, expired.reason_code], [false, 'auth', 'no_call_translation']);

      assert.equal((await partner('delete_account', { account: closing })).status, 200);
      // No operator sync: delete_account asks for one in the background, and the node stops taking the call.
      await eventually(async () => {
        const refused = await dial('61255500411', 'retail-closed-probe@test');
        assert.equal(refused.reason_code, 'no_call_translation', JSON.stringify(refused));
      }, 30_000);
      // Had a probe been admitted before the sync landed, it holds nothing after this.
      assert.equal((await world.sidecars[0].post('/api/opensips/call/release', { call_id: 'retail-closed-probe@test' })).status, 200);
      const closed = await dial('61255500411', 'retail-closed@test');
      assert.deepEqual([closed.allowed, closed.stage, closed.reason_code], [false, 'auth', 'no_call_translation']);
      assert.equal(await balance(poor), '0.00');
    });

    it('debit_balance of credit the node holds leased recalls it over the live channel and debits exactly', async () => {
      const code = await account(5);
      await setup(code, '61255500511');
      await sync();
      // A call leases the node what it needs (3.0001 of the 5), then ends without a CDR: the node holds it unused.
      const call = await dial('61255500511', 'retail-leased@test');
      assert.equal(call.allowed, true, JSON.stringify(call));
      assert.equal((await world.sidecars[0].post('/api/opensips/call/release', { call_id: 'retail-leased@test' })).status, 200);
      const before = await partner('get_balance', { account: code });
      assert.match(before.text, /"available_balance":1\.9999\b/, before.text);

      // The whole balance: more than is available, which the node's lease stands in the way of until it is recalled.
      const debited = await partner('debit_balance', { account: code, amount: 5 });
      assert.equal(debited.status, 200, debited.text);
      assert.match(debited.text, /"balance_after":0\.00\b/);
      const after = await partner('get_balance', { account: code });
      assert.match(after.text, /"total_balance":0\.00\b.*"available_balance":0\.00\b/, after.text);
      // Nothing more to take: refused, and nothing changes.
      const refused = await partner('debit_balance', { account: code, amount: 0.01 });
      assert.equal(refused.status, 400, refused.text);
      assert.equal(await balance(code), '0.00');
    });

    it('a CDR that comes after its reservation is gone is still billed to the retail account it names', async () => {
      const code = await account(5);
      const caller = '61255500611';
      await setup(code, caller);
      await sync();
      const decided = await dial(caller, 'retail-late@test');
      assert.equal(decided.allowed, true, JSON.stringify(decided));
      // The reservation ends first (released, or expired on a long call): nothing at the node says whose the call was.
      assert.equal((await world.sidecars[0].post('/api/opensips/call/release', { call_id: 'retail-late@test' })).status, 200);
      const cdr = {
        ...trunk10Cdr('retail-late@test', 40, { startMs: Date.now() - 60_000 }, { ani: caller }),
        retail_account_id: decided.auth.retail_account_id as number,
      };
      const ingested = await world.sidecars[0].post('/api/cdrs/ingest', cdr);
      assert.equal(ingested.status, 201, JSON.stringify(ingested.body));
      const cost = ingested.body.customer_cost as string;
      assert.equal(ingested.body.reconciled, false, 'billed beyond a reservation it no longer held');
      await eventually(async () => {
        const shown = await balance(code);
        assert.ok(new Decimal(shown).equals(new Decimal(5).minus(cost)), `balance ${shown}, 5 less ${cost}`);
      }, 20_000);
      // The same CDR naming another account is a different CDR under that Call-ID.
      const other = await world.sidecars[0].post('/api/cdrs/ingest', { ...cdr, retail_account_id: cdr.retail_account_id + 1 });
      assert.equal(other.status, 409, JSON.stringify(other.body));
    });

    it("prices, caps, routes, rates and bills a product's calls with its own sell deck, following live changes to it", async () => {
      // A deck of its own: 614 at 0.6000 a minute in whole minutes, carrier 20 only. Trunk 10's deck 1 (the
      // product's until now) sells it at 0.0250 in 6-second increments, carrier 21 the cheapest: every figure
      // below tells the two apart.
      const control = world.control;
      const deck = await control.post('/api/rate-decks', { name: 'Retail AUD', deck_type: 'customer', currency: 'AUD' });
      assert.equal(deck.status, 201, JSON.stringify(deck.body));
      const deckId = deck.body.id as number;
      const rate = await control.post(`/api/rate-decks/${deckId}/rates`, {
        prefix: '614',
        destination_name: 'Australia Mobile',
        rate_per_minute: '0.6000',
        billing_increment_initial: 60,
        billing_increment_step: 60,
        effective_at: '2026-01-01T00:00:00Z',
      });
      assert.equal(rate.status, 201, JSON.stringify(rate.body));
      assert.equal((await control.post(`/api/rate-decks/${deckId}/allowlist`, { carrier_trunk_id: 20 })).status, 201);
      const code = await account(5);
      const caller = '61255500711';
      await setup(code, caller);
      // The deck and its rates come with a snapshot (rates are not a live table); the product's change after it, live.
      await sync();
      const productDeck = async (deckOrNull: number | null): Promise<void> => {
        const changed = await control.send('PUT', `/api/partner-products/${productId}`, { rate_deck_id: deckOrNull });
        assert.equal(changed.status, 200, JSON.stringify(changed.body));
        await eventually(async () => {
          const probe = await world.sidecars[0].post('/api/opensips/call/auth', {
            source_ip: '203.0.113.77',
            call_id: 'retail-deck-probe@test',
            ani: caller,
            dnis: ACCESS_NUMBER,
          });
          assert.equal(probe.body.allowed, true, JSON.stringify(probe.body));
          assert.equal(probe.body.customer_rate_deck_id, deckOrNull ?? undefined, JSON.stringify(probe.body));
        }, 20_000);
      };
      await productDeck(deckId);

      const decided = await dial(caller, 'retail-deck-1@test');
      assert.equal(decided.allowed, true, JSON.stringify(decided));
      assert.equal(decided.auth.customer_rate_deck_id, deckId);
      // 5.00 at 0.6000 a minute buys 8 whole minutes (at deck 1's price, the admission maximum).
      assert.equal(decided.admit.max_duration_seconds, 480, JSON.stringify(decided.admit));
      assert.equal(decided.route.carrier_trunk_id, 20, "the product deck's allowlist");

      // The CDR as the script sends it: naming the retail account and the sell deck call/decide answered.
      const named = { ani: caller, retail_account_id: decided.auth.retail_account_id, customer_rate_deck_id: deckId };
      const cdr = trunk10Cdr('retail-deck-1@test', 73, { startMs: Date.now() - 90_000 }, named);
      const ingested = await world.sidecars[0].post('/api/cdrs/ingest', cdr);
      assert.equal(ingested.status, 201, JSON.stringify(ingested.body));
      assert.ok(
        new Decimal(ingested.body.customer_cost as string).equals('1.2'),
        `73 s billed as 2 minutes: ${ingested.body.customer_cost}`,
      );
      assert.equal(ingested.body.reconciled, true, 'within what admission reserved at the same price');
      // Sent again, it is the same CDR; naming another deck, a different one under that Call-ID.
      assert.deepEqual((await world.sidecars[0].post('/api/cdrs/ingest', cdr)).body, ingested.body);
      const otherDeck = await world.sidecars[0].post('/api/cdrs/ingest', { ...cdr, customer_rate_deck_id: 1 });
      assert.equal(otherDeck.status, 409, JSON.stringify(otherDeck.body));
      const rows = storeRows(world.store);
      await eventually(async () => {
        const shown = await balance(code);
        assert.ok(new Decimal(shown).equals('3.8'), `balance ${shown}, 5 less 1.20`);
        const settled = await rows.get<{ customer_rate_deck_id: number }>(
          'SELECT customer_rate_deck_id FROM cdrs WHERE sip_call_id = ?',
          'retail-deck-1@test',
        );
        assert.equal(settled?.customer_rate_deck_id, deckId, 'the CDR at the centre names the deck it was rated with');
      }, 20_000);

      // The separate endpoints: call/auth names the deck; call/admit and call/route given it price and route with it.
      const node = world.sidecars[0];
      const auth = await node.post('/api/opensips/call/auth', {
        source_ip: '203.0.113.77',
        call_id: 'retail-deck-separate@test',
        ani: caller,
        dnis: ACCESS_NUMBER,
      });
      assert.equal(auth.body.customer_rate_deck_id, deckId, JSON.stringify(auth.body));
      const call = { customer_trunk_id: 10, dnis: MOBILE, call_id: 'retail-deck-separate@test' };
      const admitted = await node.post('/api/opensips/call/admit', {
        ...call,
        retail_account_id: auth.body.retail_account_id,
        customer_rate_deck_id: deckId,
      });
      assert.equal(admitted.body.allowed, true, JSON.stringify(admitted.body));
      const capped = admitted.body.max_duration_seconds as number;
      assert.ok(capped > 0 && capped < 480 && capped % 60 === 0, `whole minutes of what is left at 0.6000: ${capped}`);
      const routed = await node.post('/api/opensips/call/route', { ...call, customer_rate_deck_id: deckId });
      assert.equal(routed.body.carrier_trunk_id, 20, JSON.stringify(routed.body));
      assert.equal((await node.post('/api/opensips/call/route', call)).body.carrier_trunk_id, 21, "without it, the trunk's deck");
      assert.equal((await node.post('/api/opensips/call/release', { call_id: 'retail-deck-separate@test' })).status, 200);

      // No deck named: the trunk's again (the product as the other tests have it), by a live change.
      await productDeck(null);
      const plain = await dial(caller, 'retail-deck-2@test');
      assert.equal(plain.allowed, true, JSON.stringify(plain));
      assert.equal(plain.route.carrier_trunk_id, 21, "deck 1's cheapest carrier");
      const trunkDeck = await world.sidecars[0].post(
        '/api/cdrs/ingest',
        trunk10Cdr('retail-deck-2@test', 73, { startMs: Date.now() - 90_000 }, { ani: caller }),
      );
      assert.equal(trunkDeck.status, 201, JSON.stringify(trunkDeck.body));
      assert.ok(new Decimal(trunkDeck.body.customer_cost as string).equals('0.0325'), `78 s at 0.0250: ${trunkDeck.body.customer_cost}`);
    });

    it('after a kill -9 of the node in a stream of retail calls, every acknowledged CDR is billed to the account once', async () => {
      const code = await account(50);
      const caller = '61255500511';
      await setup(code, caller);
      await sync();
      const node = world.sidecars[0];
      const attempted = new Map<string, Record<string, unknown>>();
      const acknowledged = new Map<string, unknown>();
      let stop = false;
      const worker = async (id: number): Promise<void> => {
        for (let i = 0; !stop; i++) {
          const callId = `retail-k${id}-${i}@durability`;
          try {
            const decided = await dial(caller, callId);
            if (!decided.allowed) continue;
            const figures = trunk10Cdr(callId, 1 + ((id * 7 + i) % 90), { startMs: Date.now() - 120_000 }, { ani: caller });
            attempted.set(callId, figures);
            const ingested = await node.post('/api/cdrs/ingest', figures);
            if (ingested.status === 201) acknowledged.set(callId, ingested.body);
          } catch {
            return; // the node is gone: this request was never acknowledged
          }
        }
      };
      const workers = Array.from({ length: 4 }, (_, id) => worker(id));
      // By count, not by time: a slow machine only takes longer.
      while (acknowledged.size < 30) await new Promise((resolve) => setTimeout(resolve, 20));
      await node.kill('SIGKILL');
      stop = true;
      await Promise.all(workers);

      // Every CDR sent again, as OpenSIPS retries: an acknowledged one is a duplicate with its first answer; one
      // whose answer was lost is either (it was durable) or is taken now. Each is billed once either way.
      restarted = await SidecarProcess.start({ dataDir: node.dataDir, args: world.sidecarArgs(0) });
      let total = new Decimal(0);
      for (const [callId, figures] of attempted) {
        const resent = await restarted.post('/api/cdrs/ingest', figures);
        const first = acknowledged.get(callId);
        if (first !== undefined) {
          assert.equal(resent.status, 200, `${callId}: ${JSON.stringify(resent.body)}`);
          assert.deepEqual(resent.body, first);
        } else assert.ok(resent.status === 200 || resent.status === 201, `${callId}: ${JSON.stringify(resent.body)}`);
        total = total.plus(resent.body.customer_cost as string);
      }
      await eventually(async () => {
        const shown = await balance(code);
        assert.ok(new Decimal(shown).equals(new Decimal(50).minus(total)), `balance ${shown}, 50 less ${total.toFixed()}`);
        const history = await partner('call_history', { account: code });
        assert.equal(history.body.calls.length, 10, history.text);
      }, 30_000);
    });
  },
  { timeout: 300_000 },
);
