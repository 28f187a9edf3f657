import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SidecarProcess } from '../helpers/sidecar.js';
import { startMoneyWorld, type MoneyWorld } from '../helpers/money-world.js';
import { MOBILE, trunk10Cdr } from '../helpers/cdrs.js';

/**
 * Live calls per customer trunk on a real node: trunk 10 with port_limit 2 admits two calls and refuses the
 * third (503 port_limit_reached, in call/decide at stage auth and in call/auth alike); a CDR or a release
 * frees a port; GET /api/metrics/cps reports the live calls; and a node killed with SIGKILL counts the same
 * live calls after its restart, so it does not admit past the limit.
 */
const START = Date.parse('2026-01-15T08:30:00Z');

const invite = (callId: string): Record<string, unknown> => ({
  source_ip: '203.0.113.77',
  call_id: callId,
  ani: '6125550100',
  dnis: MOBILE,
  ruri: `sip:${MOBILE}@203.0.113.5`,
  from: '<sip:6125550100@203.0.113.77>;tag=a1',
  to: `<sip:${MOBILE}@203.0.113.5>`,
});

const cdrFor = (callId: string): Record<string, unknown> => trunk10Cdr(callId, 30, { startMs: START, ringMs: 0 });

const FULL = { allowed: false, reject_code: 503, reject_reason: 'port limit reached', reason_code: 'port_limit_reached' };

async function portsOf(node: SidecarProcess): Promise<number> {
  const metrics = await node.get('/api/metrics/cps?trunk_type=customer&trunk_id=10');
  assert.equal(metrics.status, 200, metrics.text);
  assert.equal(metrics.body.trunk_id, 10);
  return metrics.body.ports_current as number;
}

async function decide(node: SidecarProcess, callId: string): Promise<Record<string, unknown>> {
  const answer = await node.post('/api/opensips/call/decide', invite(callId));
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return answer.body as Record<string, unknown>;
}

describe('live calls per trunk: port_limit on a real node', () => {
  let world: MoneyWorld;
  let restarted: SidecarProcess | null = null;
  before(async () => {
    world = await startMoneyWorld({
      sidecars: 1,
      change: (description) => {
        description.customer_trunks.find((trunk) => trunk.id === 10)!.port_limit = 2;
      },
      sidecarArgs: ['--admission-seconds', '600', '--lease-chunk', '5.00'],
    });
    const credit = await world.control.post('/api/balances/customer/1/balance/credit', { amount: '50.00' });
    assert.equal(credit.status, 200, JSON.stringify(credit.body));
  });
  after(async () => {
    await Promise.all([world.stop(), restarted?.kill()]);
  });

  it('admits port_limit calls, refuses the next, frees a port on CDR and on release, and keeps the count across kill -9', async () => {
    const node = world.sidecars[0];
    assert.equal(await portsOf(node), 0);

    for (const callId of ['a@ports', 'b@ports']) {
      const answer = await decide(node, callId);
      assert.equal(answer.allowed, true, JSON.stringify(answer));
      assert.equal(answer.stage, 'route');
    }
    assert.equal(await portsOf(node), 2);

    // The third: refused at auth, in call/decide and in call/auth alike, and with nothing reserved.
    const { auth: authStep, ...third } = await decide(node, 'c@ports');
    assert.deepEqual(third, { ...FULL, stage: 'auth', digest: null, admit: null, route: null });
    assert.deepEqual(authStep, { ...FULL, trunk_type: 'customer', customer_trunk_id: 10 });
    const auth = await node.post('/api/opensips/call/auth', invite('c@ports'));
    assert.deepEqual(auth.body, authStep);
    // call/admit on its own (the script's old step) refuses it too: the port is taken where the reservation is.
    const admit = await node.post('/api/opensips/call/admit', { customer_trunk_id: 10, dnis: MOBILE, call_id: 'c@ports' });
    assert.equal(admit.body.allowed, false);
    assert.equal(admit.body.reason_code, 'port_limit_reached');
    assert.equal(admit.body.reject_code, 503);
    assert.equal(await portsOf(node), 2);
    // The route simulator says so among its checks, as call/auth would refuse it now.
    const simulated = await node.post('/api/admin/route-simulator', { customer_trunk_id: 10, dnis: MOBILE });
    assert.equal(simulated.status, 200, JSON.stringify(simulated.body));
    assert.deepEqual(
      (simulated.body.checks as { name: string }[]).find((check) => check.name === 'ports'),
      { name: 'ports', passed: false, reject_code: 503, reject_reason: 'port limit reached', reason_code: 'port_limit_reached' },
    );

    // A CDR ends a call and frees its port.
    const cdr = await node.post('/api/cdrs/ingest', cdrFor('a@ports'));
    assert.equal(cdr.status, 201, JSON.stringify(cdr.body));
    assert.equal(await portsOf(node), 1);
    assert.equal((await decide(node, 'c@ports')).allowed, true);
    assert.equal(await portsOf(node), 2);

    // A release (a call that never reached a carrier) frees one too.
    const release = await node.post('/api/opensips/call/release', { call_id: 'b@ports' });
    assert.equal(release.status, 200, JSON.stringify(release.body));
    assert.equal(await portsOf(node), 1);

    // Listed without trunk_id as well.
    const listed = await node.get('/api/metrics/cps?trunk_type=customer');
    assert.equal((listed.body as { trunk_id: number; ports_current: number }[]).find((entry) => entry.trunk_id === 10)?.ports_current, 1);

    // kill -9: the node comes back counting c@ports, the one call still live.
    await node.kill('SIGKILL');
    restarted = await SidecarProcess.start({ dataDir: node.dataDir, args: world.sidecarArgs(0) });
    assert.equal(await portsOf(restarted), 1);
    const afterRestart = await restarted.get('/api/metrics/cps');
    assert.deepEqual(
      (afterRestart.body as { trunk_type: string; trunk_id: number; ports_current: number }[])
        .filter((entry) => entry.trunk_type === 'customer')
        .map((entry) => [entry.trunk_id, entry.ports_current]),
      [[10, 1]],
      'a trunk with live calls is listed before any attempt since the restart',
    );
    assert.equal((await decide(restarted, 'd@ports')).allowed, true);
    const refused = await decide(restarted, 'e@ports');
    assert.equal(refused.reason_code, 'port_limit_reached');
    assert.equal(await portsOf(restarted), 2);
    // The calls admitted before the restart still end (and free their ports) as before.
    assert.equal((await restarted.post('/api/cdrs/ingest', cdrFor('c@ports'))).status, 201);
    assert.equal(await portsOf(restarted), 1);
  });
});
