import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { after, before, it } from 'node:test';
import { forEachEngine } from '../helpers/engines.js';
import { eventually, startMoneyWorld, type MoneyWorld } from '../helpers/money-world.js';
import {
  admin,
  allCaughtUp,
  auth,
  deltaSeq,
  lastSeq,
  lcrCarriers,
  MOBILE,
  onEvery,
  routedCarrier,
  TRUNK_10_SOURCE,
} from '../helpers/live-nodes.js';
import { SidecarProcess } from '../helpers/sidecar.js';
import { storeRows } from '../helpers/store-rows.js';

/**
 * Live changes (issue 18) with real processes: a control plane and three sidecars following its delta log.
 * Every check waits for a condition (a sidecar's delta_seq, an answer), never for time.
 */

/** A TCP proxy in front of the control plane that the test can cut and restore: a node's channel partitioned. */
class CuttableProxy {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(private readonly target: number) {}

  async open(): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(this.target, '127.0.0.1');
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => socket.destroy());
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as { port: number }).port;
    this.server = server;
  }

  async cut(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const socket of this.sockets) socket.destroy();
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

forEachEngine('live changes: three sidecars follow the delta log', (engine) => {
  let world: MoneyWorld;

  before(async () => {
    world = await startMoneyWorld({ engine, sidecars: 3 });
    // The seeded world's own deltas first: every node starts where the centre is.
    await allCaughtUp(world);
  });
  after(async () => {
    await world.stop();
  });

  it('each live kind reaches all three sidecars after one admin call', async () => {
    const nodes = world.sidecars;
    // Block rules: create, toggle, delete.
    const rule = await admin(world, 'POST', '/api/block-rules', {
      scope: 'global',
      block_type: 'dnis',
      pattern: '61400999',
      match_type: 'prefix',
    });
    await onEvery(nodes, async (node) => assert.equal((await auth(node, TRUNK_10_SOURCE, '61400999123')).reason_code, 'dnis_blocked'));
    await admin(world, 'POST', `/api/block-rules/${rule.id}/toggle`);
    await onEvery(nodes, async (node) => assert.equal((await auth(node, TRUNK_10_SOURCE, '61400999123')).allowed, true));
    await admin(world, 'POST', `/api/block-rules/${rule.id}/toggle`);
    await onEvery(nodes, async (node) => assert.equal((await auth(node, TRUNK_10_SOURCE, '61400999123')).reason_code, 'dnis_blocked'));
    await admin(world, 'DELETE', `/api/block-rules/${rule.id}`);
    await onEvery(nodes, async (node) => assert.equal((await auth(node, TRUNK_10_SOURCE, '61400999123')).allowed, true));

    // A customer account suspended takes its trunks' calls away, and back.
    await admin(world, 'PUT', '/api/customer-accounts/1', { status: 'suspended' });
    await onEvery(nodes, async (node) => assert.equal((await auth(node, TRUNK_10_SOURCE)).reason_code, 'source_ip_not_authorised'));
    await admin(world, 'PUT', '/api/customer-accounts/1', { status: 'active' });
    await onEvery(nodes, async (node) => assert.equal((await auth(node, TRUNK_10_SOURCE)).allowed, true));

    // A customer trunk's status and limits.
    await admin(world, 'PUT', '/api/customer-trunks/10', { cps_limit: 17 });
    await onEvery(nodes, async (node) => assert.equal((await auth(node, TRUNK_10_SOURCE)).cps_limit, 17));
    await admin(world, 'PUT', '/api/customer-trunks/10', { status: 'suspended' });
    await onEvery(nodes, async (node) => assert.equal((await auth(node, TRUNK_10_SOURCE)).reason_code, 'source_ip_not_authorised'));
    await admin(world, 'PUT', '/api/customer-trunks/10', { status: 'active', cps_limit: 10 });
    await onEvery(nodes, async (node) => assert.equal((await auth(node, TRUNK_10_SOURCE)).cps_limit, 10));

    // Trunk IP auth: a CIDR added lets its addresses in, removed shuts them out.
    const cidr = await admin(world, 'POST', '/api/trunk-ip-auth', { trunk_type: 'customer', trunk_id: 10, cidr: '100.64.7.0/24' });
    await onEvery(nodes, async (node) => assert.equal((await auth(node, '100.64.7.9')).customer_trunk_id, 10));
    await admin(world, 'DELETE', `/api/trunk-ip-auth/${cidr.id}`);
    await onEvery(nodes, async (node) => assert.equal((await auth(node, '100.64.7.9')).reason_code, 'source_ip_not_authorised'));

    // The rate deck's carrier allowlist.
    await onEvery(nodes, async (node) => assert.ok((await lcrCarriers(node)).includes(23)));
    await admin(world, 'DELETE', '/api/rate-decks/1/allowlist/23');
    await onEvery(nodes, async (node) => assert.ok(!(await lcrCarriers(node)).includes(23)));
    await admin(world, 'POST', '/api/rate-decks/1/allowlist', { carrier_trunk_id: 23 });
    await onEvery(nodes, async (node) => assert.ok((await lcrCarriers(node)).includes(23)));

    // Exchange rates: USD at 3 AUD makes the US carrier (0.0120 USD) dearer than the sell rate, so no longer first.
    await onEvery(nodes, async (node) => assert.equal((await lcrCarriers(node))[0], 21));
    // The route cache holds the US carrier first now; the change must not be answered from it.
    for (const node of nodes) assert.equal(await routedCarrier(node), 21);
    const rate = await admin(world, 'POST', '/api/exchange-rates', {
      from_currency: 'USD',
      to_currency: 'AUD',
      rate: '3.0',
      effective_at: new Date(Date.now() - 1000).toISOString(),
    });
    await onEvery(nodes, async (node) => assert.notEqual((await lcrCarriers(node))[0], 21));
    for (const node of nodes) assert.notEqual(await routedCarrier(node), 21, 'the route cache did not serve the old answer');
    await admin(world, 'DELETE', `/api/exchange-rates/${rate.id}`);
    await onEvery(nodes, async (node) => assert.equal((await lcrCarriers(node))[0], 21));

    // The centre's status shows each node's applied sequence and lag.
    const last = await allCaughtUp(world);
    const status = await world.control.get('/api/opensips/deltas');
    await eventually(async () => {
      const again = await world.control.get('/api/opensips/deltas');
      for (const node of again.body.nodes as { applied_seq: number; lag: number }[]) {
        assert.equal(node.applied_seq, last);
        assert.equal(node.lag, 0);
      }
    });
    assert.equal(status.body.nodes.length, 3);
  });

  it('each routing kind (carriers, gateways, failover, LCR config, registrations) reaches all three sidecars', async () => {
    const nodes = world.sidecars;
    const lookup = async (node: SidecarProcess): Promise<Record<string, any>> => {
      const answer = await node.post('/api/lcr/lookup', { customer_trunk_id: 10, dnis: MOBILE });
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      return answer.body as Record<string, any>;
    };
    const reasonOf = async (node: SidecarProcess, carrierId: number): Promise<string | undefined> =>
      ((await lookup(node)).carriers as { carrier_trunk_id: number; reason: string }[]).find((c) => c.carrier_trunk_id === carrierId)
        ?.reason;

    // A carrier trunk suspended stops taking calls, and the route cache must not keep answering with it.
    for (const node of nodes) assert.equal(await routedCarrier(node), 21);
    await admin(world, 'PUT', '/api/carrier-trunks/21', { status: 'suspended' });
    await onEvery(nodes, async (node) => assert.equal(await reasonOf(node, 21), 'carrier_not_active'));
    for (const node of nodes) assert.notEqual(await routedCarrier(node), 21, 'the route cache did not serve the old carrier');
    await admin(world, 'PUT', '/api/carrier-trunks/21', { status: 'active' });
    await onEvery(nodes, async (node) => assert.equal(await routedCarrier(node), 21));

    // A gateway: carrier 23 has none active until one is added, and none again once it is deleted.
    await onEvery(nodes, async (node) => assert.equal(await reasonOf(node, 23), 'no_active_gateway'));
    const ip = await admin(world, 'POST', '/api/carrier-trunks/23/ips', { ip_address: '192.0.2.123' });
    await onEvery(nodes, async (node) => assert.notEqual(await reasonOf(node, 23), 'no_active_gateway'));
    await admin(world, 'DELETE', `/api/carrier-trunks/23/ips/${ip.id}`);
    await onEvery(nodes, async (node) => assert.equal(await reasonOf(node, 23), 'no_active_gateway'));

    // A failover rule: what a 488 from carrier 21 means.
    const failover = async (node: SidecarProcess): Promise<string> =>
      (await node.post('/api/opensips/call/failover', { customer_trunk_id: 10, carrier_trunk_id: 21, failure_code: 488 })).body
        .action as string;
    const rule = await admin(world, 'POST', '/api/carrier-trunks/21/failover-rules', { sip_code: 488, action: 'return_to_customer' });
    await onEvery(nodes, async (node) => assert.equal(await failover(node), 'return_to_customer'));
    await admin(world, 'DELETE', `/api/carrier-trunks/21/failover-rules/${rule.id}`);
    await onEvery(nodes, async (node) => assert.equal(await failover(node), 'retry_next'));

    // LCR config: a newer system-wide row is the one in force.
    const config = await admin(world, 'POST', '/api/lcr-config', { rate_deck_id: null, acceptable_loss_pct: '7.5' });
    await onEvery(nodes, async (node) => assert.equal((await lookup(node)).config?.acceptable_loss_pct, '7.5'));
    await admin(world, 'DELETE', `/api/lcr-config/${config.id}`);
    await onEvery(nodes, async (node) => assert.notEqual((await lookup(node)).config?.acceptable_loss_pct, '7.5'));

    // A SIP registration identifies a caller from an address no CIDR admits; disabled, it no longer does.
    const registered = async (node: SidecarProcess): Promise<Record<string, any>> =>
      (
        await node.post('/api/opensips/call/auth', {
          source_ip: '198.18.0.9',
          call_id: `live-${Math.random()}`,
          ani: '6125550100',
          dnis: MOBILE,
          username: 'live_reg',
          domain: 'sip.example.net',
        })
      ).body as Record<string, any>;
    const registration = await admin(world, 'POST', '/api/sip-registrations', {
      customer_trunk_id: 10,
      username: 'live_reg',
      domain: 'sip.example.net',
      password_hash: 'a'.repeat(32),
      hash_algorithm: 'MD5',
    });
    await onEvery(nodes, async (node) => assert.equal((await registered(node)).customer_trunk_id, 10));
    await admin(world, 'PUT', `/api/sip-registrations/${registration.id}`, { status: 'disabled' });
    await onEvery(nodes, async (node) => assert.equal((await registered(node)).reason_code, 'source_ip_not_authorised'));
    await allCaughtUp(world);
  });

  it('a request during a stream of deltas sees the state before or after each, never a mix', async () => {
    // One change alters two indexes at once: trunk 10's limits (the trunk list) and whether its CIDR admits it
    // (the CIDR index). Allowed answers must carry cps_limit 10, the only limit it has while active; a torn
    // swap (the CIDR index of one state, the trunks of the other) would answer allowed with 11.
    const node = world.sidecars[0];
    let stop = false;
    const seen = { allowed: 0, refused: 0 };
    const hammer = async (): Promise<void> => {
      while (!stop) {
        const answer = await auth(node, TRUNK_10_SOURCE);
        if (answer.allowed === true) {
          assert.equal(answer.cps_limit, 10, `a mixed state: ${JSON.stringify(answer)}`);
          seen.allowed++;
        } else {
          assert.equal(answer.reason_code, 'source_ip_not_authorised', JSON.stringify(answer));
          seen.refused++;
        }
      }
    };
    let failure: unknown = null;
    const hammers = Array.from({ length: 4 }, () =>
      hammer().catch((error: unknown) => {
        failure ??= error;
        stop = true;
      }),
    );
    // A torn swap would be the node's: the PostgreSQL copy (the centre's deltas written and woken by NOTIFY) needs
    // fewer rounds to show that each delta carries both changes; 40 rounds took it 43-56 s on a loaded machine.
    const rounds = engine === 'postgres' ? 10 : 40;
    for (let i = 0; i < rounds && failure === null; i++) {
      await admin(world, 'PUT', '/api/customer-trunks/10', { status: 'suspended', cps_limit: 11 });
      const suspended = await lastSeq(world);
      await eventually(async () => assert.ok((await deltaSeq(node)) >= suspended));
      await admin(world, 'PUT', '/api/customer-trunks/10', { status: 'active', cps_limit: 10 });
      const active = await lastSeq(world);
      await eventually(async () => assert.ok((await deltaSeq(node)) >= active));
    }
    stop = true;
    await Promise.all(hammers);
    assert.ifError(failure);
    assert.ok(seen.allowed > 0 && seen.refused > 0, `both states were seen: ${JSON.stringify(seen)}`);
  });

  it('concurrent admin writes get one gap-free order, and every node ends where the centre is', async () => {
    const first = (await lastSeq(world)) + 1;
    const created = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        admin(world, 'POST', '/api/block-rules', {
          scope: 'global',
          block_type: 'dnis',
          pattern: `6140055${String(i).padStart(2, '0')}`,
          match_type: 'exact',
        }),
      ),
    );
    await Promise.all(created.filter((_, i) => i % 3 === 0).map((rule) => admin(world, 'POST', `/api/block-rules/${rule.id}/toggle`)));
    const last = await allCaughtUp(world);
    assert.equal(last - first + 1, 40, 'one delta per write');
    {
      const rows = await storeRows(world.store).all<{ seq: number; row_id: number }>(
        'SELECT seq, op, row_id FROM delta_log WHERE seq >= ? ORDER BY seq',
        first,
      );
      assert.deepEqual(
        rows.map((row) => row.seq),
        Array.from({ length: 40 }, (_, i) => first + i),
        'no gap',
      );
      // Each create is one delta of its own row.
      const creates = rows.slice(0, 30).map((row) => row.row_id);
      assert.deepEqual(
        [...creates].sort((a, b) => a - b),
        created.map((rule) => rule.id as number).sort((a, b) => a - b),
      );
      // On SQLite ids are handed out in commit order (one writer), so increasing ids show seq order is commit
      // order. Not on PostgreSQL: a transaction takes its id from the identity sequence before it queues on the
      // delta counter's row lock, so a later id may commit first (this test found it: ids 10, 8, 17, ... in seq
      // order). There the counter's lock is what orders the commits, and the gap-free sequence above shows it.
      if (engine === 'sqlite')
        assert.deepEqual(
          creates,
          [...creates].sort((a, b) => a - b),
        );
    }
    for (const node of world.sidecars)
      for (let i = 0; i < 30; i++) {
        const answer = await auth(node, TRUNK_10_SOURCE, `6140055${String(i).padStart(2, '0')}`);
        assert.equal(answer.allowed, i % 3 === 0, `pattern ${i} on ${node.url}`);
      }
  });

  // 200 changes on SQLite; the PostgreSQL copy, the slower per admin write, kills the node as far into a shorter burst.
  const burst = engine === 'postgres' ? 80 : 200;
  it(`a sidecar killed -9 during a burst of ${burst} changes comes back to the latest state, in order, without a gap`, async () => {
    const rules = [];
    for (let i = 0; i < 10; i++)
      rules.push(
        await admin(world, 'POST', '/api/block-rules', {
          scope: 'global',
          block_type: 'dnis',
          pattern: `6140066${i}`,
          match_type: 'prefix',
        }),
      );
    await allCaughtUp(world);
    const victim = world.sidecars[2];
    let killedAt = 0;
    for (let i = 0; i < burst; i++) {
      // Toggles of ten rules: the final state depends on every one of them, in order.
      await admin(world, 'POST', `/api/block-rules/${rules[(i * 7) % 10].id as number}/toggle`);
      if (i === Math.floor(burst * 0.4)) {
        killedAt = await deltaSeq(victim);
        await victim.kill('SIGKILL');
      }
    }
    const restarted = await SidecarProcess.start({ dataDir: victim.dataDir, args: world.sidecarArgs(2) });
    world.sidecars[2] = restarted;
    // It served the deltas it had stored before anything else: never behind where it was killed.
    assert.ok((await deltaSeq(restarted)) >= killedAt, 'the restart serves the stored deltas');
    assert.ok(
      restarted.logs.some((line) => line.includes('stored deltas applied to the snapshot')),
      'the stored snapshot came back with its deltas',
    );
    await allCaughtUp(world);
    const expected = new Map<number, boolean>();
    for (const rule of rules)
      expected.set(rule.id as number, (await admin(world, 'GET', `/api/block-rules/${rule.id as number}`)).is_active as boolean);
    for (const node of world.sidecars)
      for (let i = 0; i < 10; i++) {
        const answer = await auth(node, TRUNK_10_SOURCE, `6140066${i}55`);
        assert.equal(answer.allowed, !expected.get(rules[i].id as number), `rule ${i} on ${node.url}`);
      }
  });

  it('a sidecar whose channel is cut catches up when it is restored', async () => {
    const proxy = new CuttableProxy(world.control.port);
    await proxy.open();
    const node = world.sidecars[1];
    await node.kill();
    const args = world.sidecarArgs(1).map((arg) => (arg === world.control.url ? `http://127.0.0.1:${proxy.port}` : arg));
    const partitioned = await SidecarProcess.start({ dataDir: node.dataDir, args });
    world.sidecars[1] = partitioned;
    await allCaughtUp(world);
    await proxy.cut();
    const rule = await admin(world, 'POST', '/api/block-rules', {
      scope: 'global',
      block_type: 'dnis',
      pattern: '61400777',
      match_type: 'prefix',
    });
    await onEvery([world.sidecars[0], world.sidecars[2]], async (other) =>
      assert.equal((await auth(other, TRUNK_10_SOURCE, '61400777000')).reason_code, 'dnis_blocked'),
    );
    // Cut off, it still answers from what it has.
    assert.equal((await auth(partitioned, TRUNK_10_SOURCE, '61400777000')).allowed, true);
    await admin(world, 'POST', `/api/block-rules/${rule.id as number}/toggle`);
    await proxy.open();
    await allCaughtUp(world);
    assert.equal((await auth(partitioned, TRUNK_10_SOURCE, '61400777000')).allowed, true, 'created then deactivated, in order');
    await proxy.cut();
  });
});

forEachEngine('live changes: a node behind the trimmed delta log takes a snapshot', (engine) => {
  let world: MoneyWorld;

  before(async () => {
    world = await startMoneyWorld({ engine, sidecars: 2, controlArgs: ['--delta-retention-count', '5', '--node-hosts', '127.0.0.1'] });
  });
  after(async () => {
    await world.stop();
  });

  it('is sent a snapshot by a sync, then follows the log from its sequence', async () => {
    // The seeded world's deltas are trimmed to five: the fixture snapshot's sequence (0) is behind the log.
    for (const [index, node] of world.sidecars.entries())
      await admin(world, 'PUT', `/api/opensips-nodes/${index + 1}`, { sidecar_address: node.url });
    await allCaughtUp(world, world.sidecars, 30_000);
    const node = world.sidecars[1];
    const before = (await node.get('/api/snapshot')).body.version as number;
    await node.kill('SIGKILL');
    const patterns = Array.from({ length: 8 }, (_, i) => `614008${i}`);
    for (const pattern of patterns)
      await admin(world, 'POST', '/api/block-rules', { scope: 'global', block_type: 'dnis', pattern, match_type: 'prefix' });
    const status = await world.control.get('/api/opensips/deltas');
    assert.ok(status.body.oldest_seq > (await lastSeq(world)) - 8, 'the log no longer holds what the node missed');
    const restarted = await SidecarProcess.start({ dataDir: node.dataDir, args: world.sidecarArgs(1) });
    world.sidecars[1] = restarted;
    await admin(world, 'PUT', '/api/opensips-nodes/2', { sidecar_address: restarted.url });
    await allCaughtUp(world, world.sidecars, 30_000);
    assert.ok((await restarted.get('/api/snapshot')).body.version > before, 'a new snapshot was taken');
    for (const pattern of patterns) assert.equal((await auth(restarted, TRUNK_10_SOURCE, `${pattern}11`)).reason_code, 'dnis_blocked');
    // And from there it follows the log again.
    const rule = await admin(world, 'POST', '/api/block-rules', {
      scope: 'global',
      block_type: 'dnis',
      pattern: '61400899',
      match_type: 'prefix',
    });
    await onEvery(world.sidecars, async (other) =>
      assert.equal((await auth(other, TRUNK_10_SOURCE, '61400899000')).reason_code, 'dnis_blocked', String(rule.id)),
    );
  });
});
