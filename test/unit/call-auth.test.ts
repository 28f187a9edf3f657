import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { authorizeCall, type CallAuthRequest } from '../../src/sidecar/auth/call-auth.js';
import { callAuthRequest } from '../../src/devkit/requests.js';
import { LivePorts } from '../../src/sidecar/limits/live-ports.js';
import { routingTables } from '../fixtures/routing.js';
import { engineFor } from '../helpers/engine.js';

const engine = engineFor(routingTables());

function auth(fields: Partial<CallAuthRequest>, ports = new LivePorts(), over = engine) {
  return authorizeCall(
    over,
    { ...callAuthRequest('203.0.113.77', { call_id: 'abc123@opensips', ani: '6125550100', dnis: '61400123456' }), ...fields },
    ports,
  );
}

describe('call auth: identifying the trunk', () => {
  it('answers the contract example with the trunk limits', () => {
    assert.deepEqual(auth({}).decision, {
      allowed: true,
      trunk_type: 'customer',
      customer_trunk_id: 10,
      ani: '6125550100',
      dnis: '61400123456',
      cps_limit: 10,
      port_limit: 30,
      per_minute_rate_limit: 300,
      sip_trusted: false,
      rtpengine_enabled: false,
    });
  });

  it('tells trunks sharing an address apart by the longest tech prefix and strips it', () => {
    const long = auth({ source_ip: '203.0.113.10', dnis: '999961400123456' }).decision;
    assert.equal(long.allowed && long.customer_trunk_id, 11);
    assert.equal(long.allowed && long.dnis, '61400123456');
    assert.equal(long.allowed && long.cps_limit, 5);
    assert.equal(long.allowed && long.sip_trusted, true);
    assert.equal(long.allowed && long.rtpengine_enabled, true);
    const short = auth({ source_ip: '203.0.113.10', dnis: '9961400123456' }).decision;
    assert.equal(short.allowed && short.customer_trunk_id, 14);
    assert.equal(short.allowed && short.dnis, '61400123456');
  });

  it('resolves two trunks with the same tech prefix on one address to the lower trunk id, whatever the row order', () => {
    for (const order of ['forward', 'reverse']) {
      const engineWithConflict = engineFor(
        routingTables((description) => {
          description.customer_trunks.find((trunk) => trunk.id === 14)!.tech_prefix = '9999';
          if (order === 'reverse') description.trunk_ip_auth.reverse();
        }),
      );
      const decision = authorizeCall(
        engineWithConflict,
        callAuthRequest('203.0.113.10', { dnis: '999961400123456' }),
        new LivePorts(),
      ).decision;
      assert.equal(decision.allowed && decision.customer_trunk_id, 11, order);
    }
  });

  it('falls back to a less specific CIDR when no trunk of the /32 fits the number', () => {
    const decision = auth({ source_ip: '203.0.113.10', dnis: '61400123456' }).decision;
    assert.equal(decision.allowed && decision.customer_trunk_id, 10);
    assert.equal(decision.allowed && decision.dnis, '61400123456');
  });

  it('matches IPv6 networks and IPv4-mapped sources', () => {
    const v6 = auth({ source_ip: '2001:db8:10:ffff::1' }).decision;
    assert.equal(v6.allowed && v6.customer_trunk_id, 10);
    const mapped = auth({ source_ip: '::ffff:203.0.113.9' }).decision;
    assert.equal(mapped.allowed && mapped.customer_trunk_id, 10);
  });

  it('refuses unknown sources, suspended trunks and trunks of suspended accounts', () => {
    const refused = {
      allowed: false,
      reject_code: 403,
      reject_reason: 'source ip not authorised',
      reason_code: 'source_ip_not_authorised',
    };
    assert.deepEqual(auth({ source_ip: '10.1.2.3' }).decision, refused);
    assert.deepEqual(auth({ source_ip: '198.51.100.5' }).decision, refused); // account 2 suspended
    assert.deepEqual(auth({ source_ip: '192.0.2.1' }).decision, refused); // trunk 13 suspended
    assert.deepEqual(auth({ source_ip: '2001:db8:11::1' }).decision, refused);
  });

  it('identifies a REGISTER-authenticated trunk by username and domain when the IP is unknown', () => {
    const decision = auth({ source_ip: '10.1.2.3', username: 'acme_trunk_01', domain: 'SIP.crazytel.com.au' }).decision;
    assert.equal(decision.allowed && decision.customer_trunk_id, 10);
    assert.equal(auth({ source_ip: '10.1.2.3', username: 'acme_off', domain: 'sip.crazytel.com.au' }).decision.allowed, false);
    assert.equal(auth({ source_ip: '10.1.2.3', username: 'acme_trunk_01', domain: 'other.example' }).decision.allowed, false);
  });
});

describe('call auth: numbers', () => {
  it('normalises +, separators and SIP URIs to digits', () => {
    for (const dnis of ['+61 (400) 123-456', '+61.400.123.456', 'sip:+61400123456@sip.example.net;user=phone', '<tel:+61-400-123-456>']) {
      const decision = auth({ dnis }).decision;
      assert.equal(decision.allowed && decision.dnis, '61400123456', dnis);
    }
  });

  it('takes the DNIS from the Request-URI when OpenSIPS sends no dnis', () => {
    const decision = auth({ dnis: null, ruri: 'sip:61400123456@sip.crazytel.com.au' }).decision;
    assert.equal(decision.allowed && decision.dnis, '61400123456');
  });

  it('answers 484 for a number that is not an E.164 length or not a number', () => {
    for (const dnis of ['12345', '6140012345678901', 'abc', '61400*123', '+']) {
      assert.deepEqual(
        auth({ dnis }).decision,
        {
          allowed: false,
          reject_code: 484,
          reject_reason: 'invalid dnis',
          reason_code: 'invalid_dnis',
          trunk_type: 'customer',
          customer_trunk_id: 10,
        },
        dnis,
      );
    }
  });

  it('names no trunk for a dialled number that is not one from an address tech-prefix trunks share', () => {
    // 203.0.113.10/32 is trunks 11 (9999) and 14 (99); the /24 around it is trunk 10, without a prefix. The junk
    // tells no prefix, so it is none of theirs for sure: read as '', it fell to trunk 10 and was named so.
    const refused = { allowed: false, reject_code: 484, reject_reason: 'invalid dnis', reason_code: 'invalid_dnis' };
    for (const dnis of ['abc', '9999abc', '99x61400123456', '+'])
      assert.deepEqual(auth({ source_ip: '203.0.113.10', dnis }).decision, refused, dnis);
    // Without the /24 the address is still authorised, to those two trunks: the number is what is wrong (not a
    // 403 the script answers with a digest challenge).
    const onlyPrefixed = engineFor(routingTables((description) => void description.trunk_ip_auth.splice(0, 1)));
    assert.deepEqual(auth({ source_ip: '203.0.113.10', dnis: 'abc' }, new LivePorts(), onlyPrefixed).decision, refused);
    // One trunk on every network holding the address: that trunk, tech prefix or not.
    const onlyEleven = engineFor(
      routingTables((description) => void (description.trunk_ip_auth = description.trunk_ip_auth.filter((row) => row.id === 2))),
    );
    assert.deepEqual(auth({ source_ip: '203.0.113.10', dnis: 'abc' }, new LivePorts(), onlyEleven).decision, {
      ...refused,
      trunk_type: 'customer',
      customer_trunk_id: 11,
    });
  });

  it('checks the length after stripping the tech prefix', () => {
    const decision = auth({ source_ip: '203.0.113.10', dnis: '9999123456' }).decision; // 6 digits left
    assert.deepEqual(decision, {
      allowed: false,
      reject_code: 484,
      reject_reason: 'invalid dnis',
      reason_code: 'invalid_dnis',
      trunk_type: 'customer',
      customer_trunk_id: 11,
    });
  });

  it('treats a withheld or non-numeric ANI as empty rather than refusing the call', () => {
    const decision = auth({ ani: 'anonymous' }).decision;
    assert.equal(decision.allowed && decision.ani, '');
  });

  it('takes the caller from PAI, then PPI, then RPID only on a trusted trunk', () => {
    const trusted = auth({
      source_ip: '203.0.113.10',
      dnis: '999961400123456',
      ani: '6125550100',
      pai: '',
      ppi: '<sip:+61255501111@carrier.example>',
      rpid: '<sip:61299999999@x>',
    }).decision;
    assert.equal(trusted.allowed && trusted.ani, '61255501111');
    const untrusted = auth({ ani: '6125550100', pai: '<sip:+61255501111@carrier.example>' }).decision;
    assert.equal(untrusted.allowed && untrusted.ani, '6125550100');
  });
});

describe('call auth: block rules', () => {
  it('blocks a global DNIS prefix with the rule code', () => {
    assert.deepEqual(auth({ dnis: '19001234567' }).decision, {
      allowed: false,
      reject_code: 403,
      reject_reason: 'dnis blocked',
      reason_code: 'dnis_blocked',
      trunk_type: 'customer',
      customer_trunk_id: 10,
    });
  });

  it('blocks an exact ANI on the trunk the rule is scoped to, and only there', () => {
    const blocked = auth({ ani: '+61-2-5550-199' }).decision;
    assert.deepEqual(blocked, {
      allowed: false,
      reject_code: 603,
      reject_reason: 'ani blocked',
      reason_code: 'ani_blocked',
      trunk_type: 'customer',
      customer_trunk_id: 10,
    });
    assert.equal(auth({ ani: '61255501990' }).decision.allowed, true, 'exact rule must not match a longer number');
    assert.equal(auth({ source_ip: '203.0.113.10', dnis: '999961400123456', ani: '6125550199' }).decision.allowed, true, 'other trunk');
  });

  it('applies number_code rules to both numbers', () => {
    const onAni = auth({ ani: '61881234567' }).decision;
    assert.equal(!onAni.allowed && onAni.reject_reason, 'ani blocked');
    assert.equal(!onAni.allowed && onAni.reject_code, 488);
    const onDnis = auth({ dnis: '61881234567' }).decision;
    assert.equal(!onDnis.allowed && onDnis.reject_reason, 'dnis blocked');
  });

  it('holds a caller whose number is unusable to the rules by its digits: adding a digit or a letter does not unblock it', () => {
    // 16+ digits or a stray character make the number unusable (ANI ""), but the digits still reach the carrier.
    for (const ani of ['6188123456789012345', '61881234567x', 'sip:61881234567#1@203.0.113.77', '+61 88 1234 567*']) {
      const decision = auth({ ani }).decision;
      assert.equal(!decision.allowed && decision.reason_code, 'ani_blocked', ani);
      assert.equal(!decision.allowed && decision.reject_code, 488, ani);
    }
    // Nor does a character before the digits, among them, or the '+' escaped as a SIP URI may write it: the
    // carrier reads the digits all the same (a stack that unescapes the user part, one that drops what is not a digit).
    for (const ani of [
      'x61881234567',
      '*61881234567',
      '%2B61881234567',
      'sip:%2b61881234567@203.0.113.77',
      '6x1881234567',
      'a%3A61881234567',
    ]) {
      const decision = auth({ ani }).decision;
      assert.equal(!decision.allowed && decision.reason_code, 'ani_blocked', ani);
    }
    const exact = auth({ ani: '6125550199;x' }).decision;
    assert.equal(!exact.allowed && exact.reason_code, 'ani_blocked', 'the exact number with a parameter');
    // What the rules do not match still passes, its number as unusable as before.
    for (const ani of ['6125550100000000000', 'anonymous', '61255501x']) {
      const decision = auth({ ani }).decision;
      assert.equal(decision.allowed && decision.ani, '', ani);
    }
  });

  it('ignores inactive rules', () => {
    assert.equal(auth({ dnis: '61411000000' }).decision.allowed, true);
  });
});

describe('call auth: ports', () => {
  const withLiveCalls = (trunkId: number, calls: number): LivePorts => {
    const ports = new LivePorts();
    for (let i = 0; i < calls; i++) ports.take(trunkId);
    return ports;
  };

  it('refuses a trunk with port_limit live calls with 503 port_limit_reached, naming the trunk', () => {
    // Trunk 10's port_limit is 30.
    assert.equal(auth({}, withLiveCalls(10, 29)).decision.allowed, true);
    const { decision, outcome } = auth({}, withLiveCalls(10, 30));
    assert.equal(outcome, 'port_limit');
    assert.deepEqual(decision, {
      allowed: false,
      reject_code: 503,
      reject_reason: 'port limit reached',
      reason_code: 'port_limit_reached',
      trunk_type: 'customer',
      customer_trunk_id: 10,
    });
  });

  it("counts only the calling trunk's own calls", () => {
    assert.equal(auth({}, withLiveCalls(11, 30)).decision.allowed, true);
  });

  it('answers a blocked number as blocked even when the trunk is full: the block is for good, the port only for now', () => {
    const { decision } = auth({ dnis: '19001234567' }, withLiveCalls(10, 30));
    assert.equal(!decision.allowed && decision.reason_code, 'dnis_blocked');
  });

  it('reads a port_limit of 0 as no limit', () => {
    const unlimited = engineFor(
      routingTables((description) => {
        description.customer_trunks.find((trunk) => trunk.id === 10)!.port_limit = 0;
      }),
    );
    const decision = auth({ call_id: null }, withLiveCalls(10, 1000), unlimited).decision;
    assert.equal(decision.allowed, true);
  });
});

describe('call auth: a partner access number', () => {
  const future = new Date(Date.now() + 3_600_000).toISOString();
  const withAccess = (productTrunk: number) =>
    engineFor(
      routingTables((description) => {
        description.retail_products = [
          { id: 7, customer_trunk_id: productTrunk, rate_deck_id: 1, currency: 'AUD', access_numbers: ['61280000000'] },
        ];
        description.call_translations = [
          {
            id: 1,
            retail_account_id: 42,
            partner_product_id: 7,
            a_number: '6125550100',
            access_number: '61280000000',
            b_number: '61400123456',
            expires_at: future,
          },
          // The trunk-10 block rule on this caller applies to the translated call as to any of the trunk's.
          {
            id: 2,
            retail_account_id: 42,
            partner_product_id: 7,
            a_number: '6125550199',
            access_number: '61280000000',
            b_number: '61400123456',
            expires_at: future,
          },
        ];
      }),
    );
  const dialAccess = (ani: string, over: ReturnType<typeof engineFor>, ports = new LivePorts()) =>
    auth({ source_ip: '203.0.113.77', ani, dnis: '61280000000' }, ports, over);
  const refusal = (answer: ReturnType<typeof auth>): [string, number] | null =>
    answer.decision.allowed ? null : [answer.decision.reason_code, answer.decision.reject_code];

  it("answers a translated call as the product trunk's call to the translated number, naming the retail account", () => {
    const { decision, outcome } = dialAccess('6125550100', withAccess(10));
    assert.equal(outcome, 'allowed');
    assert.ok(decision.allowed);
    assert.deepEqual([decision.customer_trunk_id, decision.dnis, decision.retail_account_id], [10, '61400123456', 42]);
  });

  it('refuses a caller without a translation, a blocked caller, a full product trunk and a product trunk not active', () => {
    const engine10 = withAccess(10);
    assert.deepEqual(refusal(dialAccess('6125550111', engine10)), ['no_call_translation', 404]);
    assert.deepEqual(refusal(dialAccess('6125550199', engine10)), ['ani_blocked', 603]);
    const full = new LivePorts();
    for (let i = 0; i < 30; i++) full.take(10);
    assert.deepEqual(refusal(dialAccess('6125550100', engine10, full)), ['port_limit_reached', 503]);
    assert.deepEqual(refusal(dialAccess('6125550100', withAccess(13))), ['customer_trunk_not_active', 403]);
    // The same caller dialling an ordinary number is an ordinary call of its own trunk.
    const ordinary = auth({ ani: '6125550100' }, new LivePorts(), engine10).decision;
    assert.ok(ordinary.allowed);
    assert.equal(ordinary.retail_account_id, undefined);
  });
});
