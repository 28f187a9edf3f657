import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { forEachEngine, startCentre, type Centre } from '../helpers/engines.js';
import { SidecarProcess } from '../helpers/sidecar.js';

/**
 * Two customers' portal sessions adding overlapping networks at the same moment: call/auth would take one
 * account's calls as the other's (sync/portal/access-rules.ts), so at most one of each pair may be stored, the
 * other refused 409 network_of_another_account. The check reads the other accounts' networks and the handler
 * inserts after it: without the two held together, both requests of a pair read "no overlap" and both insert.
 * On PostgreSQL the two sessions' requests go to two control planes sharing the store, as behind a balancer.
 */
const PAIRS = 30;

forEachEngine('portal networks claimed at once', (engine) => {
  let centre: Centre;
  let second: SidecarProcess | null = null;
  const trunks: Record<'alpha' | 'beta', number> = { alpha: 0, beta: 0 };
  const tokens: Record<'alpha' | 'beta', string> = { alpha: '', beta: '' };

  before(async () => {
    centre = await startCentre(engine, 'portal_race');
    // The same store, another process: the lock must hold across control planes, not only within one.
    if (engine === 'postgres') second = await SidecarProcess.startControlPlane({ args: ['--store', centre.store] });
    for (const name of ['alpha', 'beta'] as const) {
      const account = await centre.control.post('/api/customer-accounts', {
        name: `${name} networks`,
        currency: 'AUD',
        username: `${name}-race`,
        password: `${name}-race-secret-1`,
        can_create_trunk_ips: true,
      });
      assert.equal(account.status, 201, JSON.stringify(account.body));
      const trunk = await centre.control.post('/api/customer-trunks', {
        customer_account_id: account.body.id,
        name: `${name} trunk`,
        currency: 'AUD',
      });
      assert.equal(trunk.status, 201, JSON.stringify(trunk.body));
      trunks[name] = trunk.body.id as number;
      const login = await centre.control.post('/api/auth/login', { username: `${name}-race`, password: `${name}-race-secret-1` });
      assert.equal(login.status, 200, JSON.stringify(login.body));
      tokens[name] = login.body.token as string;
    }
  });

  after(async () => {
    await second?.kill();
    await (centre as Centre | undefined)?.stop();
  });

  it('stores at most one of two overlapping networks sent at once, and refuses the other', async () => {
    const claim = (name: 'alpha' | 'beta', via: SidecarProcess, cidr: string) =>
      via.send(
        'POST',
        '/api/trunk-ip-auth',
        { trunk_type: 'customer', trunk_id: trunks[name], cidr },
        { authorization: `Bearer ${tokens[name]}` },
      );
    const answers = await Promise.all(
      Array.from({ length: PAIRS }, (_, i) =>
        Promise.all([claim('alpha', centre.control, `10.${i}.0.0/16`), claim('beta', second ?? centre.control, `10.${i}.7.0/24`)]),
      ),
    );
    for (const [i, pair] of answers.entries()) {
      const stored = pair.filter((answer) => answer.status === 201);
      assert.equal(stored.length, 1, `pair ${i}: ${JSON.stringify(pair)}`);
      const other = pair.find((answer) => answer.status !== 201)!;
      assert.equal(other.status, 409, JSON.stringify(other.body));
      assert.equal(other.body.reason_code, 'network_of_another_account');
    }
    const rows = (await centre.control.get('/api/trunk-ip-auth')).body as { trunk_id: number; cidr: string }[];
    for (let i = 0; i < PAIRS; i++)
      assert.equal(rows.filter((row) => row.cidr.startsWith(`10.${i}.`)).length, 1, `one network of pair ${i} is stored`);
  });
});
