import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { routingSnapshotBytes } from '../fixtures/routing.js';
import { assertErrorResponse } from '../helpers/errors.js';
import { parseExposition } from '../helpers/exposition.js';
import { SidecarProcess } from '../helpers/sidecar.js';

/** The runtime endpoints over real HTTP against a real sidecar process. */

const POST_ENDPOINTS: Record<string, Record<string, unknown>> = {
  '/api/opensips/call/auth': { source_ip: '203.0.113.77', call_id: 'abc123@opensips', ani: '6125550100', dnis: '61400123456' },
  '/api/opensips/register/auth': {
    source_ip: '203.0.113.10',
    username: 'acme_trunk_01',
    realm: 'sip.crazytel.com.au',
    auth_response:
      'Digest username="acme_trunk_01", realm="sip.crazytel.com.au", nonce="abc", uri="sip:sip.crazytel.com.au", response="00000000000000000000000000000000"',
    method: 'REGISTER',
    uri: 'sip:sip.crazytel.com.au',
  },
  '/api/opensips/call/route': { customer_trunk_id: 10, ani: '6125550100', dnis: '61400123456', attempt: 1, tried_carrier_trunk_ids: [] },
  '/api/opensips/call/failover': { customer_trunk_id: 10, carrier_trunk_id: 20, failure_code: 503 },
  '/api/lcr/lookup': { customer_trunk_id: 10, dnis: '61400123456' },
  '/api/rate-lookup': { rate_deck_id: 1, destination: '61400123456' },
  '/api/admin/route-simulator': {
    customer_account_id: 1,
    customer_trunk_id: 10,
    ani: '61400111222',
    dnis: '61400123456',
    duration_seconds: 60,
  },
  '/api/metrics/per-minute/check': { trunk_id: 10, limit: 1000000 },
};

/** Per endpoint: a required field and a field with a type to break. */
const REQUIRED: Record<string, [required: string, typed: string, wrongValue: unknown]> = {
  '/api/opensips/call/auth': ['source_ip', 'source_ip', 42],
  '/api/opensips/register/auth': ['auth_response', 'username', ['x']],
  '/api/opensips/call/route': ['customer_trunk_id', 'tried_carrier_trunk_ids', 'not-an-array'],
  '/api/opensips/call/failover': ['failure_code', 'carrier_trunk_id', '20'],
  '/api/lcr/lookup': ['dnis', 'customer_trunk_id', 10.5],
  '/api/rate-lookup': ['destination', 'rate_deck_id', true],
  '/api/admin/route-simulator': ['customer_trunk_id', 'duration_seconds', -5],
  '/api/metrics/per-minute/check': ['limit', 'trunk_id', { id: 10 }],
};

const assertError = assertErrorResponse;

describe('sidecar over HTTP', () => {
  let sidecar: SidecarProcess;

  before(async () => {
    sidecar = await SidecarProcess.start();
  });
  after(async () => {
    await sidecar.kill();
  });

  it('answers 503 before any snapshot, and health says so', async () => {
    const health = await sidecar.get('/api/health');
    assert.equal(health.status, 200);
    assert.equal(health.body.status, 'no_snapshot');
    assert.equal(health.body.snapshot_version, null);
    assertError(await sidecar.post('/api/opensips/call/auth', POST_ENDPOINTS['/api/opensips/call/auth']), 503, /no routing snapshot/);
  });

  it('takes a snapshot by PUT and serves it', async () => {
    const put = await sidecar.putSnapshot(routingSnapshotBytes(1));
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.equal(put.body.version, 1);
    const health = await sidecar.get('/api/health');
    assert.equal(health.body.status, 'ok');
    assert.equal(health.body.snapshot_version, 1);
    assert.equal(typeof health.body.snapshot_age_seconds, 'number');
  });

  it('answers the call/auth contract example byte for byte', async () => {
    const response = await fetch(`${sidecar.url}/api/opensips/call/auth`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(POST_ENDPOINTS['/api/opensips/call/auth']),
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'application/json');
    assert.equal(
      await response.text(),
      '{"allowed":true,"trunk_type":"customer","customer_trunk_id":10,"ani":"6125550100","dnis":"61400123456","cps_limit":10,"port_limit":30,"per_minute_rate_limit":300,"sip_trusted":false,"rtpengine_enabled":false}',
    );
  });

  it('routes, fails over and looks up over HTTP', async () => {
    const routed = await sidecar.post('/api/opensips/call/route', POST_ENDPOINTS['/api/opensips/call/route']);
    assert.equal(routed.status, 200);
    assert.equal(routed.body.destination_uri, 'sip:61400123456@[2001:db8::50]:5080');
    const failover = await sidecar.post('/api/opensips/call/failover', { carrier_trunk_id: 20, failure_code: 486 });
    assert.deepEqual(failover.body, { action: 'return_to_customer' });
    const rate = await sidecar.post('/api/rate-lookup', { rate_deck_id: 1, destination: '+61 400 123 456' });
    assert.equal(rate.body.prefix, '614');
    const noRate = await sidecar.post('/api/rate-lookup', { rate_deck_id: 1, destination: '4420123' });
    assertError(noRate, 404, /no rate/);
    const lcr = await sidecar.post('/api/lcr/lookup', POST_ENDPOINTS['/api/lcr/lookup']);
    assert.deepEqual(
      lcr.body.carriers.map((carrier: { carrier_trunk_id: number }) => carrier.carrier_trunk_id),
      [21, 20, 22, 23, 24],
    );
    assertError(await sidecar.post('/api/lcr/lookup', { customer_trunk_id: 999, dnis: '61400123456' }), 404);
  });

  it('simulates a call with every check and the retail cost for the duration', async () => {
    const simulation = await sidecar.post('/api/admin/route-simulator', {
      ...POST_ENDPOINTS['/api/admin/route-simulator'],
      duration_seconds: 73,
    });
    assert.equal(simulation.status, 200);
    // 0.0250/min, trunk increments 6/6: 73 s bills 78 s = 0.0325.
    assert.equal(simulation.body.retail_cost, '0.0325');
    assert.equal(simulation.body.selected_carrier_trunk_id, 21);
    // Account 1 is prepaid and this sidecar has no control plane, so no credit: every check passes but admission.
    const failed = simulation.body.checks.filter((check: { passed: boolean }) => !check.passed);
    assert.deepEqual(failed, [
      { name: 'admission', passed: false, reject_code: 402, reject_reason: 'insufficient balance', reason_code: 'insufficient_balance' },
    ]);
    assert.deepEqual([simulation.body.allowed, simulation.body.admission_allowed, simulation.body.headroom], [false, false, '0.00']);
    // Carrier 21 bills 60/60 and rounds up: 73 s -> 120 s at 0.0120 USD = 0.0240 USD, 0.0360 AUD at 1.5.
    const usd = simulation.body.carriers.find((carrier: { carrier_trunk_id: number }) => carrier.carrier_trunk_id === 21);
    assert.deepEqual([usd.wholesale_cost, usd.converted_wholesale_cost, usd.margin_amount], ['0.0240', '0.0360', '-0.0035']);
    // At a moment given: the rates in force then (deck 1's 6140 at 0.0100 from 2099); the next answer is today's again.
    const ahead = await sidecar.post('/api/admin/route-simulator', {
      ...POST_ENDPOINTS['/api/admin/route-simulator'],
      duration_seconds: 73,
      at: '2099-06-01T00:00:00Z',
    });
    assert.equal(ahead.status, 200, JSON.stringify(ahead.body));
    assert.deepEqual([ahead.body.customer_rate, ahead.body.retail_cost], ['0.0100', '0.0130']);
    const today = await sidecar.post('/api/admin/route-simulator', {
      ...POST_ENDPOINTS['/api/admin/route-simulator'],
      duration_seconds: 73,
    });
    assert.deepEqual([today.body.customer_rate, today.body.retail_cost], ['0.0250', '0.0325']);
    assertError(
      await sidecar.post('/api/admin/route-simulator', { ...POST_ENDPOINTS['/api/admin/route-simulator'], at: 'next tuesday' }),
      400,
      /RFC 3339/,
    );
    const blocked = await sidecar.post('/api/admin/route-simulator', { customer_trunk_id: 10, ani: '', dnis: '19001234567' });
    assert.equal(blocked.body.allowed, false);
    assert.deepEqual([blocked.body.reject_code, blocked.body.reject_reason], [403, 'dnis blocked']);
    assertError(
      await sidecar.post('/api/admin/route-simulator', { customer_account_id: 2, customer_trunk_id: 10, dnis: '61400123456' }),
      422,
      /does not belong/,
    );
  });

  it('enforces the per-minute limit with 200 allowed:false (the only status the schema declares) and reports the counters', async () => {
    // Trunk 13 is in the snapshot (suspended, and checked nowhere else here): only known trunks are counted.
    const check = (): Promise<{ status: number; body: any }> => sidecar.post('/api/metrics/per-minute/check', { trunk_id: 13, limit: 2 });
    assert.deepEqual((await check()).body, { allowed: true, current: 1, limit: 2 });
    assert.deepEqual((await check()).body, { allowed: true, current: 2, limit: 2 });
    const refused = await check();
    assert.equal(refused.status, 200);
    assert.deepEqual(refused.body, { allowed: false, current: 2, limit: 2 });
    const metrics = await sidecar.get('/api/metrics/per-minute?trunk_id=13');
    assert.equal(metrics.body.per_minute_current, 2);
    const cps = await sidecar.get('/api/metrics/cps?trunk_id=10&trunk_type=customer');
    assert.equal(cps.body.trunk_id, 10);
    assert.ok(cps.body.cps_current >= 0);
    assertError(await sidecar.get('/api/metrics/cps?trunk_id=abc'), 400);
    assertError(await sidecar.get('/api/metrics/cps?trunk_type=vendor'), 400);
  });

  for (const [path, valid] of Object.entries(POST_ENDPOINTS)) {
    describe(`bad input on ${path}`, () => {
      const [required, typed, wrongValue] = REQUIRED[path];
      const validationStatus = path === '/api/admin/route-simulator' ? 422 : 400;

      it('refuses malformed JSON, non-objects and empty bodies with 400', async () => {
        assertError(await sidecar.post(path, '{"source_ip": '), 400, /not valid JSON/);
        assertError(await sidecar.post(path, '[1,2,3]'), 400, /JSON object/);
        assertError(await sidecar.post(path, 'null'), 400);
        assertError(await sidecar.post(path, ''), 400, /empty/);
      });

      it('names a missing required field', async () => {
        const body = { ...valid };
        delete body[required];
        assertError(await sidecar.post(path, body), validationStatus, new RegExp(required));
      });

      it('names a field of the wrong type', async () => {
        assertError(await sidecar.post(path, { ...valid, [typed]: wrongValue }), validationStatus, new RegExp(typed));
      });

      it('refuses an oversized body with 413, declared or chunked', async () => {
        const big = JSON.stringify({ ...valid, padding: 'x'.repeat(70 * 1024) });
        const reply = await sidecar.raw(
          `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${big.length}\r\n\r\n${big}`,
        );
        assert.match(reply, /^HTTP\/1\.1 413 /);
        assert.match(reply, /"status":413/);
        // Chunked, so no Content-Length to refuse early: counted while reading.
        const chunked = await sidecar.raw(
          `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${big.length.toString(16)}\r\n${big}\r\n0\r\n\r\n`,
        );
        assert.match(chunked, /^HTTP\/1\.1 413 /);
      });

      it('survives hostile values and keeps answering', async () => {
        const hostile = ['\u0000\u0001', '"; DROP TABLE trunks; --', '𝔘𝔫𝔦𝔠𝔬𝔡𝔢', 'A'.repeat(5000), '../../etc/passwd', '%00%0d%0a'];
        for (const value of hostile) {
          for (const field of Object.keys(valid)) {
            const body = JSON.stringify({ ...valid, [field]: value }).replace(
              /^\{/,
              '{"__proto__":{"polluted":true},"constructor":{"prototype":1},',
            );
            const response = await sidecar.post(path, body);
            assert.ok(response.status < 500, `${field}=${JSON.stringify(value).slice(0, 40)} gave ${response.status}`);
          }
        }
        const again = await sidecar.post(path, valid);
        assert.ok(again.status === 200 || again.status === 404, `valid request after hostile ones gave ${again.status}`);
      });

      it('refuses a non-JSON content type with 415', async () => {
        const response = await fetch(sidecar.url + path, {
          method: 'POST',
          headers: { 'content-type': 'text/plain' },
          body: JSON.stringify(valid),
        });
        assert.equal(response.status, 415);
      });
    });
  }

  it('answers unknown paths with 404 and wrong methods with 405 and Allow', async () => {
    assertError(await sidecar.post('/api/nope', {}), 404);
    const wrongMethod = await fetch(`${sidecar.url}/api/opensips/call/auth`);
    assert.equal(wrongMethod.status, 405);
    assert.equal(wrongMethod.headers.get('allow'), 'POST');
    const body = (await wrongMethod.json()) as { code: string };
    assert.equal(body.code, 'Method Not Allowed');
  });

  it('answers Expect: 100-continue (libcurl sends it for bodies over 1 KiB)', async () => {
    const body = JSON.stringify({ ...POST_ENDPOINTS['/api/opensips/call/auth'], from: 'x'.repeat(900), to: 'y'.repeat(300) });
    const reply = await sidecar.raw(
      `POST /api/opensips/call/auth HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nExpect: 100-continue\r\n\r\n${body}`,
    );
    assert.match(reply, /^HTTP\/1\.1 100 Continue\r\n/);
    assert.match(reply, /HTTP\/1\.1 200 OK[\s\S]*"allowed":true/);
  });

  it('survives clients that disconnect mid-request', async () => {
    for (let i = 0; i < 20; i++) {
      await sidecar.raw(
        `POST /api/opensips/call/auth HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"source_ip":`,
        { destroyAfterWrite: true },
      );
      await sidecar.raw('PUT /api/snapshot HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc', { destroyAfterWrite: true });
    }
    assert.ok(sidecar.alive());
    assert.equal((await sidecar.post('/api/opensips/call/failover', { carrier_trunk_id: 20, failure_code: 486 })).status, 200);
  });

  it('exposes Prometheus metrics for requests, decisions and the snapshot', async () => {
    const metrics = await sidecar.get('/metrics');
    assert.equal(metrics.status, 200);
    assert.match(metrics.text, /^sidecar_http_requests_total\{route="\/api\/opensips\/call\/auth",status="200"\} \d+$/m);
    assert.match(metrics.text, /^sidecar_http_request_duration_seconds_bucket\{route="\/api\/opensips\/call\/route",le="\+Inf"\} \d+$/m);
    assert.match(metrics.text, /^sidecar_decisions_total\{endpoint="call_route",outcome="routed"\} \d+$/m);
    assert.match(metrics.text, /^sidecar_snapshot_version 1$/m);
    assert.match(metrics.text, /^sidecar_snapshot_loads_total\{source="http",result="ok"\} 1$/m);
    // The console's Live charts: routes by carrier, failovers by SIP code (the 486 asked above).
    assert.match(metrics.text, /^sidecar_carrier_routes_total\{carrier_trunk_id="\d+"\} [1-9]\d*$/m);
    assert.match(metrics.text, /^sidecar_failovers_total\{sip_code="486",action="[a-z_]+"\} [1-9]\d*$/m);
    // The process's own health, read by the real process: event-loop lag (what every INVITE waits on), RSS once.
    const parsed = parseExposition(metrics.text);
    for (const name of ['nodejs_eventloop_lag_p99_seconds', 'nodejs_eventloop_lag_max_seconds', 'nodejs_heap_size_used_bytes'])
      assert.ok(Number.isFinite(parsed.value(name)), `${name} is served`);
    assert.ok(parsed.value('process_cpu_seconds_total')! > 0);
    assert.equal(parsed.series('process_resident_memory_bytes').length, 1);
  });
});
