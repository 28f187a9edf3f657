import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { SnapshotDescription } from '../../src/core/snapshot/schema.js';
import { startMoneyWorld, type MoneyWorld } from '../helpers/money-world.js';
import type { SidecarProcess } from '../helpers/sidecar.js';
import { assertErrorResponse } from '../helpers/errors.js';

/**
 * call/decide and call/reroute against the contract's separate endpoints: two identical worlds (a control
 * plane and a node each, the same credit), the same calls sent to one as single requests and to the other as
 * the old script sent them (register/auth, call/auth, call/admit, call/route, call/release; call/failover
 * then call/route). Every step's answer, headroom included, must be the same bytes either way, and so must
 * the money each call leaves held.
 */
const md5 = (text: string): string => createHash('md5').update(text).digest('hex');

function digestHeader(uri: string, cnonce = 'c0ffee'): string {
  const [username, realm, password, nonce, nc] = ['acme_trunk_01', 'sip.crazytel.com.au', 's3cret', 'bm9uY2U', '00000001'];
  const response = md5(`${md5(`${username}:${realm}:${password}`)}:${nonce}:${nc}:${cnonce}:auth:${md5(`INVITE:${uri}`)}`);
  return `Digest username="${username}", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${response}", algorithm=MD5, cnonce="${cnonce}", qop=auth, nc=${nc}`;
}

interface Call {
  name: string;
  source_ip: string;
  dnis: string;
  call_id: string;
  digest?: { auth_response: string; uri: string };
}

const invite = (call: Call): Record<string, unknown> => ({
  source_ip: call.source_ip,
  call_id: call.call_id,
  ani: '6125550100',
  dnis: call.dnis,
  ruri: `sip:${call.dnis}@203.0.113.5`,
  from: '<sip:6125550100@203.0.113.77>;tag=a1',
  to: `<sip:${call.dnis}@203.0.113.5>`,
  pai: '<sip:+61255500100@203.0.113.77>',
});

const digestFields = (call: Call): Record<string, unknown> =>
  call.digest === undefined
    ? {}
    : {
        username: 'acme_trunk_01',
        realm: 'sip.crazytel.com.au',
        auth_response: call.digest.auth_response,
        method: 'INVITE',
        uri: call.digest.uri,
      };

const CALLS: Call[] = [
  // First, while the balance covers it: admitted, then refused at routing.
  { name: 'a priced number no carrier reaches', source_ip: '203.0.113.77', dnis: '44201234567', call_id: 'eq-6@t' },
  { name: 'an IP-authorised call to a mobile', source_ip: '203.0.113.77', dnis: '61400123456', call_id: 'eq-1@t' },
  { name: 'the same Call-ID again', source_ip: '203.0.113.77', dnis: '61400123456', call_id: 'eq-1@t' },
  { name: 'a landline', source_ip: '203.0.113.77', dnis: '61255500199', call_id: 'eq-2@t' },
  { name: 'an unknown source', source_ip: '198.18.0.1', dnis: '61400123456', call_id: 'eq-3@t' },
  { name: 'a blocked number', source_ip: '203.0.113.77', dnis: '19001234567', call_id: 'eq-4@t' },
  { name: 'a number the sell deck does not price', source_ip: '203.0.113.77', dnis: '33123456789', call_id: 'eq-5@t' },
  { name: 'a trunk without a sell deck', source_ip: '198.51.100.7', dnis: '61400123456', call_id: 'eq-7@t' },
  { name: 'a suspended trunk', source_ip: '192.0.2.7', dnis: '61400123456', call_id: 'eq-8@t' },
  {
    name: 'a registered trunk proving itself with digest',
    source_ip: '198.18.0.1',
    dnis: '61400123456',
    call_id: 'eq-9@t',
    digest: { auth_response: digestHeader('sip:61400123456@203.0.113.5'), uri: 'sip:61400123456@203.0.113.5' },
  },
  {
    name: 'a wrong digest response',
    source_ip: '198.18.0.1',
    dnis: '61400123456',
    call_id: 'eq-10@t',
    digest: {
      auth_response: digestHeader('sip:61400123456@203.0.113.5').replace('response="', 'response="0'),
      uri: 'sip:61400123456@203.0.113.5',
    },
  },
  // Trunk 14 has one port (withUnroutedDestination), held since before() by a call admitted in both worlds.
  { name: 'a call to a trunk with every port taken', source_ip: '203.0.113.10', dnis: '9961400123456', call_id: 'eq-port@t' },
  ...Array.from({ length: 6 }, (_, i) => ({
    name: `mobile call ${i + 1} on a thin balance`,
    source_ip: '203.0.113.77',
    dnis: '61400123456',
    call_id: `eq-thin-${i}@t`,
  })),
];

/** The old script's way: each step its own request, stopping where a step refuses. */
async function stepByStep(node: SidecarProcess, call: Call): Promise<Record<string, unknown>> {
  const parts: Record<string, unknown> = { digest: null, auth: null, admit: null, route: null };
  let identity = {};
  if (call.digest !== undefined) {
    const digest = await node.post('/api/opensips/register/auth', { source_ip: call.source_ip, ...digestFields(call) });
    parts.digest = digest.body;
    if (digest.body.allowed !== true) return { stage: 'digest', ...parts };
    identity = { username: 'acme_trunk_01', domain: 'sip.crazytel.com.au' };
  }
  const auth = await node.post('/api/opensips/call/auth', { ...invite(call), ...identity });
  parts.auth = auth.body;
  if (auth.body.allowed !== true) return { stage: 'auth', ...parts };
  const { customer_trunk_id, dnis, ani } = auth.body;
  const admit = await node.post('/api/opensips/call/admit', { customer_trunk_id, dnis, call_id: call.call_id });
  parts.admit = admit.body;
  if (admit.body.allowed !== true) return { stage: 'admit', ...parts };
  const route = await node.post('/api/opensips/call/route', {
    customer_trunk_id,
    dnis,
    ani,
    attempt: 1,
    tried_carrier_trunk_ids: [],
    tried_gateway_ids: [],
  });
  parts.route = route.body;
  if (route.body.allowed !== true) await node.post('/api/opensips/call/release', { call_id: call.call_id });
  return { stage: 'route', ...parts };
}

/** A priced destination that no carrier deck has: admitted, then refused at routing. Trunk 14 has one port. */
const withUnroutedDestination = (description: SnapshotDescription): void => {
  description.customer_trunks.find((trunk) => trunk.id === 14)!.port_limit = 1;
  const template = description.rate_deck_rates.find((row) => row.rate_deck_id === 1)!;
  description.rate_deck_rates.push({ ...template, prefix: '44', destination_name: 'United Kingdom', rate_per_minute: '0.1000' });
};

describe('call/decide and call/reroute answer as the separate endpoints do', () => {
  let oneTrip: MoneyWorld | undefined;
  let separate: MoneyWorld | undefined;

  before(async () => {
    [oneTrip, separate] = await Promise.all([
      startMoneyWorld({ sidecars: 1, change: withUnroutedDestination }),
      startMoneyWorld({ sidecars: 1, change: withUnroutedDestination }),
    ]);
    for (const world of [oneTrip, separate] as MoneyWorld[]) {
      const credit = await world.control.post('/api/balances/customer/1/balance/credit', { amount: '2.50', description: 'decide test' });
      assert.equal(credit.status, 200, JSON.stringify(credit.body));
      // Trunk 14's one port, taken in both worlds alike (for a cent, so the balance still covers the calls).
      const holder = await world.sidecars[0].post('/api/opensips/call/admit', {
        customer_trunk_id: 14,
        dnis: '61400123456',
        call_id: 'port-holder@t',
        estimated_cost: '0.0100',
      });
      assert.equal(holder.body.allowed, true, JSON.stringify(holder.body));
    }
  });
  after(async () => {
    await Promise.all([oneTrip?.stop(), separate?.stop()]);
  });

  it('every call: the same stage, and each step the same answer', async () => {
    const stages: string[] = [];
    const reasons: string[] = [];
    for (const call of CALLS) {
      const decided = await oneTrip!.sidecars[0].post('/api/opensips/call/decide', { ...invite(call), ...digestFields(call) });
      assert.equal(decided.status, 200, `${call.name}: ${JSON.stringify(decided.body)}`);
      const expected = await stepByStep(separate!.sidecars[0], call);
      const { allowed, reject_code, reject_reason, reason_code, ...steps } = decided.body;
      assert.deepEqual(steps, expected, call.name);
      const refusal = [expected.digest, expected.auth, expected.admit, expected.route].find(
        (answer) => answer !== null && (answer as { allowed: boolean }).allowed === false,
      ) as { reject_code: number; reject_reason: string; reason_code: string } | undefined;
      assert.equal(allowed, refusal === undefined, call.name);
      assert.deepEqual(
        { reject_code, reject_reason, reason_code },
        refusal === undefined
          ? { reject_code: null, reject_reason: null, reason_code: null }
          : { reject_code: refusal.reject_code, reject_reason: refusal.reject_reason, reason_code: refusal.reason_code },
        call.name,
      );
      stages.push(`${decided.body.stage}:${String(allowed)}`);
      reasons.push(String(reason_code));
    }
    // The scenarios reach every stage, allowed and refused (a scenario list that stopped doing so would prove less).
    for (const stage of ['digest:false', 'auth:false', 'admit:false', 'route:false', 'route:true'])
      assert.ok(stages.includes(stage), `no call ended at ${stage}: ${stages.join(' ')}`);
    assert.ok(reasons.includes('port_limit_reached'), `no call was refused for its trunk's ports: ${reasons.join(' ')}`);
  });

  it('takes digest credentials once: sent again, either way, they are refused before the caller is identified', async () => {
    const uri = 'sip:61400123456@203.0.113.5';
    const call: Call = {
      name: 'a replayed digest',
      source_ip: '198.18.0.1',
      dnis: '61400123456',
      call_id: 'eq-replay@t',
      digest: { auth_response: digestHeader(uri, 'feedface'), uri },
    };
    const first = await oneTrip!.sidecars[0].post('/api/opensips/call/decide', { ...invite(call), ...digestFields(call) });
    assert.equal((first.body.digest as { allowed: boolean }).allowed, true, JSON.stringify(first.body));
    const replay = await oneTrip!.sidecars[0].post('/api/opensips/call/decide', {
      ...invite({ ...call, call_id: 'eq-replay-2@t' }),
      ...digestFields(call),
    });
    assert.deepEqual(
      { stage: replay.body.stage, reason_code: replay.body.reason_code, auth: replay.body.auth, admit: replay.body.admit },
      { stage: 'digest', reason_code: 'credentials_reused', auth: null, admit: null },
    );
    const register = separate!.sidecars[0];
    const fields = { source_ip: call.source_ip, ...digestFields(call) };
    assert.equal((await register.post('/api/opensips/register/auth', fields)).body.allowed, true);
    assert.deepEqual((await register.post('/api/opensips/register/auth', fields)).body, {
      allowed: false,
      reject_code: 403,
      reject_reason: 'credentials already used',
      reason_code: 'credentials_reused',
    });
    await oneTrip!.sidecars[0].post('/api/opensips/call/release', { call_id: call.call_id });
  });

  it('leaves the same reservations held: a release of each call finds the same', async () => {
    for (const call of CALLS) {
      const [a, b] = await Promise.all(
        ([oneTrip, separate] as MoneyWorld[]).map((world) =>
          world.sidecars[0].post('/api/opensips/call/release', { call_id: call.call_id }),
        ),
      );
      assert.deepEqual(a.body, b.body, call.name);
    }
  });

  it('refuses malformed and hostile bodies with a 400 naming the field, and reserves nothing for them', async () => {
    const node = oneTrip!.sidecars[0];
    const call = { source_ip: '203.0.113.77', call_id: 'hostile@t', dnis: '61400123456' };
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ ...call, call_id: undefined }, /call_id is required/],
      [{ ...call, call_id: 'a b' }, /call_id must be a SIP Call-ID/],
      [{ ...call, call_id: 'x'.repeat(256) }, /call_id is longer than 255/],
      [{ ...call, dialog_id: "1.1'; DROP TABLE x;--" }, /dialog_id must be the dialog id/],
      [{ ...call, dialog_id: '10.1' }, /dialog_id must be the dialog id/], // not OpenSIPS's reversed hex (no trailing zero)
      [{ ...call, dialog_id: 7 }, /dialog_id must be a string/],
      [{ ...call, source_ip: '../../etc/passwd' }, /source_ip must be an IPv4 or IPv6 address/],
      [{ ...call, auth_response: 'Digest x' }, /method is required/],
    ];
    for (const [body, message] of bad) assertErrorResponse(await node.post('/api/opensips/call/decide', body), 400, message);
    assertErrorResponse(
      await node.post('/api/opensips/call/reroute', { customer_trunk_id: 10, dnis: '614', failure_code: 99 }),
      400,
      /failure_code/,
    );
    const release = await node.post('/api/opensips/call/release', { call_id: 'hostile@t' });
    assert.equal(release.body.released, false, 'no refused request left a reservation');
  });

  it('call/reroute: the failover rule and the next carrier, as call/failover then call/route', async () => {
    const base = {
      customer_trunk_id: 10,
      dnis: '61400123456',
      ani: '6125550100',
      attempt: 2,
    };
    // Carrier 20 sends a busy caller back; 21 has no rule for it.
    const scenarios = [
      { carrier: 21, failure: 503, tried: [21] },
      { carrier: 20, failure: 486, tried: [20] },
      { carrier: 21, failure: 486, tried: [21] },
      { carrier: 21, failure: null, tried: [21] },
      { carrier: 20, failure: 503, tried: [21, 20] },
    ];
    const actions: string[] = [];
    for (const { carrier, failure, tried } of scenarios) {
      const body = {
        ...base,
        tried_carrier_trunk_ids: tried,
        tried_gateway_ids: [],
        previous_carrier_trunk_id: carrier,
        previous_failure_code: failure ?? undefined,
      };
      const rerouted = await oneTrip!.sidecars[0].post('/api/opensips/call/reroute', { ...body, failure_code: failure ?? undefined });
      assert.equal(rerouted.status, 200, JSON.stringify(rerouted.body));
      const node = separate!.sidecars[0];
      const failover =
        failure === null
          ? { action: 'retry_next' }
          : (await node.post('/api/opensips/call/failover', { customer_trunk_id: 10, carrier_trunk_id: carrier, failure_code: failure }))
              .body;
      assert.equal(rerouted.body.action, failover.action, `failure ${String(failure)}`);
      actions.push(failover.action as string);
      if (failover.action !== 'retry_next') {
        assert.deepEqual(rerouted.body, { allowed: false, action: failover.action, route: null });
        continue;
      }
      const route = await node.post('/api/opensips/call/route', body);
      assert.deepEqual(rerouted.body.route, route.body, `failure ${String(failure)}, tried ${tried.join(',')}`);
      assert.equal(rerouted.body.allowed, route.body.allowed);
    }
    assert.deepEqual(actions, ['retry_next', 'return_to_customer', 'retry_next', 'retry_next', 'retry_next']);
  });
});
