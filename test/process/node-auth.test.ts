import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { snapshotPushToken } from '../../src/core/protocol/node-credential.js';
import { routingSnapshotBytes } from '../fixtures/routing.js';
import { eventually, startMoneyWorld, type MoneyWorld } from '../helpers/money-world.js';
import { SidecarProcess } from '../helpers/sidecar.js';
import { MOBILE, trunk10Cdr, trunk10Settlement } from '../helpers/cdrs.js';

/**
 * Nodes authenticate to the centre (issue 17, finding 5): a money round and a snapshot push are taken only
 * with the node's credential, and a forged round changes nothing, however absurd its round number.
 */
const bearer = (secret: string): Record<string, string> => ({ authorization: `Bearer ${secret}` });

const cdr = (sipCallId: string, durationSeconds: number) => trunk10Cdr(sipCallId, durationSeconds);

/** A settlement as a node sends it: a forger's attempt to bill the account. */
const forgedSettlement = (sipCallId: string) => trunk10Settlement(sipCallId, 73, '0.5000');

describe('node authentication: money rounds', () => {
  let world: MoneyWorld;
  let node: SidecarProcess;
  /** What a forged round must leave as it was: the account's balance and transactions, and the CDRs. */
  const ledgerState = async (): Promise<unknown> => ({
    balance: (await world.control.get('/api/balances/customer/1/balance')).body,
    transactions: (await world.control.get('/api/balances/customer/1/transactions')).body,
    cdrs: (await world.control.get('/api/cdrs/search')).body,
  });
  const settled = async (sipCallId: string): Promise<void> => {
    const found = (await world.control.get(`/api/cdrs/search?sip_call_id=${encodeURIComponent(sipCallId)}`)).body;
    assert.equal(found.length, 1, `${sipCallId} not settled yet`);
  };

  before(async () => {
    world = await startMoneyWorld({ sidecars: 1 });
    node = world.sidecars[0];
    assert.equal((await world.control.post('/api/balances/customer/1/balance/credit', { amount: '5.00' })).status, 200);
    // A first call settled, so the node has a lease and a last round at the centre.
    assert.equal((await node.post('/api/opensips/call/admit', { customer_trunk_id: 10, dnis: MOBILE, call_id: 'first@test' })).status, 200);
    assert.equal((await node.post('/api/cdrs/ingest', cdr('first@test', 30))).status, 201);
    await eventually(() => settled('first@test'));
  });
  after(() => world.stop());

  it('refuses a round with no secret or the wrong one (401), before anything is applied', async () => {
    const before = await ledgerState();
    const round = { node: 'node-1', seq: 5_000_000, settlements: [forgedSettlement('forged-1@test')], leases: [] };
    const bare = await world.control.post('/api/ledger/node-sync', round);
    assert.equal(bare.status, 401);
    assert.equal(bare.body.reason_code, 'node_unauthenticated');
    for (const header of [
      bearer('A'.repeat(43)),
      bearer(`${world.secrets[0]}x`),
      { authorization: world.secrets[0] }, // the secret, but not as a Bearer
      { authorization: `Basic ${Buffer.from(`node-1:${world.secrets[0]}`).toString('base64')}` },
    ]) {
      const wrong = await world.control.post('/api/ledger/node-sync', round, header);
      assert.equal(wrong.status, 401, JSON.stringify(header));
      assert.equal(wrong.body.reason_code, 'node_unauthenticated');
    }
    // A lease ask with no secret takes nothing either.
    const grab = await world.control.post('/api/ledger/node-sync', {
      node: 'node-1',
      seq: 5_000_001,
      settlements: [],
      leases: [{ entity_type: 'customer', entity_id: 1, want: '4.00', give_back: '0' }],
    });
    assert.equal(grab.status, 401);
    assert.deepEqual(await ledgerState(), before);
  });

  it('refuses a forged round numbered 2^53-1 for the right node without its secret, and the node keeps settling and admitting', async () => {
    const before = await ledgerState();
    const forged = await world.control.post('/api/ledger/node-sync', {
      node: 'node-1',
      seq: Number.MAX_SAFE_INTEGER,
      settlements: [forgedSettlement('forged-2@test')],
      leases: [{ entity_type: 'customer', entity_id: 1, want: '0', give_back: '100.00' }],
    });
    assert.equal(forged.status, 401);
    assert.deepEqual(await ledgerState(), before);
    // The genuine node's next rounds are not stale: its CDRs settle and its calls are admitted.
    const admitted = await node.post('/api/opensips/call/admit', { customer_trunk_id: 10, dnis: MOBILE, call_id: 'after-forgery@test' });
    assert.equal(admitted.body.allowed, true, JSON.stringify(admitted.body));
    assert.equal((await node.post('/api/cdrs/ingest', cdr('after-forgery@test', 60))).status, 201);
    await eventually(() => settled('after-forgery@test'));
  });

  it("refuses even the node's own secret on a round numbered absurdly far ahead (409), without wedging the node", async () => {
    const before = await ledgerState();
    const ahead = await world.control.post(
      '/api/ledger/node-sync',
      { node: 'node-1', seq: Number.MAX_SAFE_INTEGER, settlements: [forgedSettlement('forged-3@test')], leases: [] },
      bearer(world.secrets[0]),
    );
    assert.equal(ahead.status, 409);
    assert.equal(ahead.body.reason_code, 'round_out_of_sequence');
    assert.ok(Number.isSafeInteger(ahead.body.last_seq) && ahead.body.last_seq >= 1);
    assert.deepEqual(await ledgerState(), before);
    assert.equal(
      (await node.post('/api/opensips/call/admit', { customer_trunk_id: 10, dnis: MOBILE, call_id: 'after-jump@test' })).status,
      200,
    );
    assert.equal((await node.post('/api/cdrs/ingest', cdr('after-jump@test', 45))).status, 201);
    await eventually(() => settled('after-jump@test'));
  });

  it("rotates the node's secret: the sidecar picks up the new file, and the old secret is refused once the new one was used", async () => {
    const old = world.secrets[0];
    const rotated = await world.control.post('/api/opensips-nodes/1/rotate-secret', {});
    assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
    assert.equal(rotated.body.previous_secret_accepted, true);
    const fresh: string = rotated.body.node_secret;
    assert.match(fresh, /^[A-Za-z0-9_-]{43}$/);
    assert.notEqual(fresh, old);
    // The operator writes the new secret where the sidecar reads it; no restart.
    writeFileSync(world.secretFile(0), `${fresh}\n`);
    assert.equal(
      (await node.post('/api/opensips/call/admit', { customer_trunk_id: 10, dnis: MOBILE, call_id: 'rotated@test' })).status,
      200,
    );
    assert.equal((await node.post('/api/cdrs/ingest', cdr('rotated@test', 20))).status, 201);
    await eventually(() => settled('rotated@test'));
    // The settled CDR went in a round that carried the old secret or the new one; keep sending CDRs until the
    // old one is refused (the sidecar re-reads the file within a second, and its next round retires the old).
    let n = 0;
    await eventually(async () => {
      const probe = await world.control.post('/api/ledger/node-sync', { node: 'node-1', seq: 1, settlements: [], leases: [] }, bearer(old));
      if (probe.status !== 401) {
        n++;
        await node.post('/api/opensips/call/admit', { customer_trunk_id: 10, dnis: MOBILE, call_id: `nudge-${n}@test` });
        await node.post('/api/cdrs/ingest', cdr(`nudge-${n}@test`, 10));
      }
      assert.equal(probe.status, 401);
    }, 20_000);
    assert.equal((await node.post('/api/cdrs/ingest', cdr('after-rotation@test', 25))).status, 201);
    await eventually(() => settled('after-rotation@test'));
    // Neither process ever logs a secret (both log at debug here); the centre does log the refused rounds.
    const logs = [...world.control.logs, ...node.logs].join('\n');
    assert.ok(!logs.includes(old) && !logs.includes(fresh));
    assert.ok(world.control.logs.some((line) => line.includes("money round refused: it does not carry the node's secret")));
  });
});

describe('money rounds: a node whose round numbers ran far ahead', () => {
  let world: MoneyWorld;
  let restarted: SidecarProcess | null = null;
  before(async () => {
    world = await startMoneyWorld({ sidecars: 1 });
    assert.equal((await world.control.post('/api/balances/customer/1/balance/credit', { amount: '5.00' })).status, 200);
  });
  after(() => Promise.all([world.stop(), restarted?.kill()]));

  it('is told round_out_of_sequence, comes back down to just after its last applied round, and settles again', async () => {
    const node = world.sidecars[0];
    assert.equal(
      (await node.post('/api/opensips/call/admit', { customer_trunk_id: 10, dnis: MOBILE, call_id: 'before-jump@test' })).status,
      200,
    );
    assert.equal((await node.post('/api/cdrs/ingest', cdr('before-jump@test', 30))).status, 201);
    await eventually(async () => {
      assert.equal((await world.control.get('/api/cdrs/search?sip_call_id=before-jump%40test')).body.length, 1);
    });
    await node.kill();
    // The node's round counter, as a corrupt or hand-edited money.db would have it: far past the centre's.
    const db = new Database(join(node.dataDir, 'money.db'));
    db.prepare("INSERT INTO meta (key, value) VALUES ('round_seq', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(
      5_000_000_000_000_000,
    );
    db.close();
    restarted = await SidecarProcess.start({ dataDir: node.dataDir, args: world.sidecarArgs(0) });
    assert.equal(
      (await restarted.post('/api/opensips/call/admit', { customer_trunk_id: 10, dnis: MOBILE, call_id: 'after-restart@test' })).status,
      200,
    );
    assert.equal((await restarted.post('/api/cdrs/ingest', cdr('after-restart@test', 30))).status, 201);
    await eventually(async () => {
      assert.equal((await world.control.get('/api/cdrs/search?sip_call_id=after-restart%40test')).body.length, 1);
    });
    assert.ok(restarted.logs.some((line) => line.includes('round_out_of_sequence')));
  });
});

describe('node authentication: secrets through the admin API', () => {
  let control: SidecarProcess;
  before(async () => {
    control = await SidecarProcess.startControlPlane();
  });
  after(() => control.kill());

  const round = (seq: number, secret: string | null) =>
    control.post(
      '/api/ledger/node-sync',
      { node: 'node-rotating', seq, settlements: [], leases: [] },
      secret === null ? {} : bearer(secret),
    );

  it('answers the secret once when the node is created, never in reads', async () => {
    const created = await control.post('/api/opensips-nodes', { hostname: 'node-rotating', mi_socket_address: 'udp:127.0.0.1:9' });
    assert.equal(created.status, 201);
    const secret: string = created.body.node_secret;
    assert.match(secret, /^[A-Za-z0-9_-]{43}$/); // 32 random bytes, base64url
    const read = JSON.stringify([
      (await control.get(`/api/opensips-nodes/${created.body.id}`)).body,
      (await control.get('/api/opensips-nodes')).body,
    ]);
    assert.ok(!read.includes(secret));
    assert.ok(!/secret|push_token/.test(read), read);
    assert.equal((await round(1, secret)).status, 200);
    // Another node's secret is not this node's.
    const other = await control.post('/api/opensips-nodes', { hostname: 'node-other', mi_socket_address: 'udp:127.0.0.1:9' });
    assert.equal((await round(2, other.body.node_secret as string)).status, 401);
  });

  it('keeps the previous secret until the node first uses the new one, then refuses it; keep_previous false refuses it at once', async () => {
    const id = (await control.get('/api/opensips-nodes')).body.data.find((node: any) => node.hostname === 'node-rotating').id;
    const first = (await control.post(`/api/opensips-nodes/${id}/rotate-secret`, {})).body.node_secret;
    const second = (await control.post(`/api/opensips-nodes/${id}/rotate-secret`, {})).body.node_secret;
    assert.equal((await round(2, first)).status, 200); // the node has not switched yet
    assert.equal((await round(3, second)).status, 200); // it has: the previous goes
    assert.equal((await round(4, first)).status, 401);
    assert.equal((await round(4, null)).status, 401);
    assert.equal((await round(4, second)).status, 200);

    const third = await control.post(`/api/opensips-nodes/${id}/rotate-secret`, { keep_previous: false });
    assert.equal(third.body.previous_secret_accepted, false);
    assert.equal((await round(5, second)).status, 401);
    assert.equal((await round(5, third.body.node_secret)).status, 200);
    // Another round under an applied round's number is stale, not applied.
    const other = await control.post(
      '/api/ledger/node-sync',
      { node: 'node-rotating', seq: 5, settlements: [], leases: [{ entity_type: 'customer', entity_id: 1, want: '1.00', give_back: '0' }] },
      bearer(third.body.node_secret),
    );
    assert.equal(other.status, 409);
    assert.equal(other.body.reason_code, 'stale_round');

    assert.equal((await control.post('/api/opensips-nodes/999/rotate-secret', {})).status, 404);
    assert.equal((await control.post(`/api/opensips-nodes/${id}/rotate-secret`, { keep_previous: 'no' })).status, 400);
  });
});

describe('money rounds: the resend of the last applied round', () => {
  let control: SidecarProcess;
  before(async () => {
    control = await SidecarProcess.startControlPlane();
  });
  after(() => control.kill());

  it('answers a byte-for-byte resend of the last round as it did, and applies nothing twice', async () => {
    const secret: string = (await control.post('/api/opensips-nodes', { hostname: 'node-resend', mi_socket_address: 'udp:127.0.0.1:9' }))
      .body.node_secret;
    const account = (
      await control.post('/api/customer-accounts', {
        name: 'Resend Pty',
        currency: 'AUD',
        billing_mode: 'prepaid',
        username: 'resend',
        password: 'resend-pass-1',
      })
    ).body.id;
    await control.post(`/api/balances/customer/${account}/balance/credit`, { amount: '10.00' });
    const body = JSON.stringify({
      node: 'node-resend',
      seq: 1,
      settlements: [{ ...forgedSettlement('resend-1@test'), customer_account_id: account }],
      leases: [{ entity_type: 'customer', entity_id: account, want: '4.00', give_back: '0' }],
    });
    const first = await control.post('/api/ledger/node-sync', body, bearer(secret));
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const state = async (): Promise<unknown> => ({
      balance: (await control.get(`/api/balances/customer/${account}/balance`)).body,
      transactions: (await control.get(`/api/balances/customer/${account}/transactions`)).body,
    });
    const after = await state();
    const resent = await control.post('/api/ledger/node-sync', body, bearer(secret));
    assert.equal(resent.status, 200);
    assert.deepEqual(resent.body, first.body);
    assert.deepEqual(await state(), after);
    // The round settles its CDR before its lease ask: 0.50 debited from 10.00, then 4.00 leased.
    assert.deepEqual([(after as any).balance.balance, (after as any).balance.reserved], ['9.50', '4.00']);
    // Without the secret the resend is refused like any round, kept answer or not.
    assert.equal((await control.post('/api/ledger/node-sync', body)).status, 401);
  });
});

describe('node authentication: snapshot pushes', () => {
  let world: MoneyWorld;
  before(async () => {
    world = await startMoneyWorld({ sidecars: 1 });
  });
  after(() => world.stop());

  it('a sidecar given a secret refuses a push without the push token (401) and keeps serving what it had', async () => {
    const sidecar = world.sidecars[0];
    const serving = (await sidecar.get('/api/snapshot')).body.version;
    const bare = await sidecar.putSnapshot(routingSnapshotBytes(serving + 1));
    assert.equal(bare.status, 401);
    assert.equal(bare.body.reason_code, 'node_unauthenticated');
    // The node's own secret is not the push token: a push proves the centre holds it, not that it was sniffed.
    for (const header of [bearer(world.secrets[0]), bearer(snapshotPushToken('B'.repeat(43)))])
      assert.equal((await sidecar.putSnapshot(routingSnapshotBytes(serving + 1), header)).status, 401);
    assert.equal((await sidecar.get('/api/snapshot')).body.version, serving);
    const pushed = await sidecar.putSnapshot(routingSnapshotBytes(serving + 1), bearer(snapshotPushToken(world.secrets[0])));
    assert.equal(pushed.status, 200, JSON.stringify(pushed.body));
    assert.equal((await sidecar.get('/api/snapshot')).body.version, serving + 1);
  });

  it('refuses a push without the push token from its headers alone, before holding any of its body', async () => {
    // A snapshot may be hundreds of megabytes: a caller without the token must not have the sidecar hold that much
    // (the body budget it would fill is the one OpenSIPS's requests share). No body byte is ever sent, so the
    // answer can only come from the headers; before, the sidecar waited for the declared bytes.
    const answer = await world.sidecars[0].raw(
      'PUT /api/snapshot HTTP/1.1\r\nHost: test\r\nContent-Type: application/msgpack\r\nContent-Length: 50000000\r\n\r\n',
      { quietMs: 20_000 },
    );
    assert.match(answer, /^HTTP\/1\.1 401 /);
    assert.match(answer, /"reason_code":"node_unauthenticated"/);
  });

  it("the centre's routing sync carries the push token, and the node takes it", async () => {
    const sidecar = world.sidecars[0];
    assert.equal((await world.control.send('PUT', '/api/opensips-nodes/1', { sidecar_address: sidecar.url })).status, 200);
    const sync = await world.control.post('/api/opensips/routing/sync', {});
    assert.equal(sync.status, 200, JSON.stringify(sync.body));
    assert.deepEqual(
      (sync.body.sidecar_results as { success: boolean; error: string | null }[]).map((result) => [result.success, result.error]),
      [[true, null]],
    );
    assert.equal((await sidecar.get('/api/snapshot')).body.version, sync.body.snapshot_version);
  });

  it('pushes with the previous token while the node still holds the secret a rotation replaced', async () => {
    const sidecar = world.sidecars[0];
    assert.equal((await world.control.post('/api/opensips-nodes/1/rotate-secret', {})).status, 200);
    // The node's secret file is not rewritten yet: it proves only the old secret.
    const sync = await world.control.post('/api/opensips/routing/sync', {});
    assert.deepEqual(
      (sync.body.sidecar_results as { success: boolean; error: string | null }[]).map((result) => [result.success, result.error]),
      [[true, null]],
    );
    assert.equal((await sidecar.get('/api/snapshot')).body.version, sync.body.snapshot_version);
  });
});
