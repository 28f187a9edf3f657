import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { request } from 'node:http';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { parseExposition } from '../helpers/exposition.js';
import { makePartnerKey, partnerControlArgs, partnerToken, partnerUrlOf, type PartnerKey } from '../helpers/partner.js';
import { SidecarProcess } from '../helpers/sidecar.js';

/**
 * The partner API's limits (sync/partner/limits.ts) on a real control plane: an address that has sent its
 * allowance of refused tokens is refused its next unverified ones unchecked (429, Retry-After), a tenant past
 * its rate is refused (429, Retry-After), each counted on /metrics; behind a trusted proxy the address is the
 * one the proxy forwarded. Each control plane here is this test's own, so no other test's tokens count.
 *
 * The allowance comes back at 1 a minute and the tenant's at 1 a second: the assertions hold however slowly
 * the requests go, short of a request taking a minute (the tenant's: short of the burst taking 20 s).
 */
let signing: PartnerKey;
let forger: PartnerKey;
let jwksFile: string;

before(async () => {
  signing = await makePartnerKey('key-1');
  // Same kid, another key: a forged signature, refused only once the RS256 verification ran.
  forger = await makePartnerKey('key-1');
  jwksFile = join(mkdtempSync(join(tmpdir(), 'partner-limits-')), 'jwks.json');
  writeFileSync(jwksFile, JSON.stringify({ keys: [signing.jwk] }));
});

interface Answer {
  status: number;
  body: any;
  retryAfter: string | null;
}

async function ask(url: string, bearer: string, headers: Record<string, string> = {}): Promise<Answer> {
  const response = await fetch(`${url}/get_balance`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}`, ...headers },
    body: JSON.stringify({ account: '1' }),
  });
  return { status: response.status, body: await response.json(), retryAfter: response.headers.get('retry-after') };
}

/** The reason code of a request whose X-Forwarded-For is sent as separate lines, in order (fetch would join them). */
function reasonWithLines(url: string, bearer: string, forwardedFor: string[]): Promise<string> {
  const body = JSON.stringify({ account: '1' });
  return new Promise((resolve, reject) => {
    const sent = request(
      `${url}/get_balance`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}`, 'x-forwarded-for': forwardedFor },
      },
      (response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => (text += chunk.toString()));
        response.on('end', () => resolve((JSON.parse(text) as { reason_code: string }).reason_code));
      },
    );
    sent.on('error', reject);
    sent.end(body);
  });
}

async function throttled(control: SidecarProcess, limit: string): Promise<number> {
  const scrape = await control.get('/metrics');
  assert.equal(scrape.status, 200, scrape.text);
  return parseExposition(scrape.text).value('control_plane_partner_throttled_total', { limit }) ?? -1;
}

/** Waits (10 s at most) for `done`: log lines arrive on their own time. */
async function until(done: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!done()) {
    assert.ok(Date.now() < deadline, 'the log lines did not come');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const refusedLogLines = (control: SidecarProcess): number => control.logs.filter((line) => line.includes('partner token refused')).length;

async function startControl(limits: string[]): Promise<{ control: SidecarProcess; url: string }> {
  const control = await SidecarProcess.startControlPlane({ args: [...partnerControlArgs(jwksFile), ...limits] });
  return { control, url: partnerUrlOf(control.logs) };
}

describe('partner API limits', { timeout: 120_000 }, () => {
  it('refuses an address that sent its allowance of bad tokens, before verifying the next, and lets a verified token through', async () => {
    const { control, url } = await startControl(['--partner-auth-failure-burst', '3', '--partner-auth-failures-per-minute', '1']);
    try {
      assert.equal(await throttled(control, 'address_auth_failures'), 0, 'the series is there before the first refusal');
      // Verified now, while the address has its allowance: the partner app's token, remembered as verified.
      const current = await partnerToken(signing, { tenant: 'acme' });
      assert.equal((await ask(url, current)).body.reason_code, 'partner_tenant_not_active', 'the token passed; no such tenant here');
      const forged = await partnerToken(forger, { tenant: 'acme' });
      for (let i = 0; i < 3; i++) {
        // A header the caller writes is not its address: no proxy is trusted.
        const refused = await ask(url, forged, { 'x-forwarded-for': `198.51.100.${i}` });
        assert.equal(refused.status, 403, JSON.stringify(refused.body));
        assert.equal(refused.body.reason_code, 'partner_token_invalid');
      }
      // A refusal's log line reaches this process after its answer (the control plane's stdout): all three first.
      await until(() => refusedLogLines(control) === 3);
      const verifiedBefore = refusedLogLines(control);
      const tenantRefusals = () => control.logs.filter((line) => line.includes('"reason_code":"partner_tenant_not_active"')).length;
      const tenantRefusalsBefore = tenantRefusals();
      const unchecked = await ask(url, forged, { 'x-forwarded-for': '198.51.100.99' });
      assert.equal(unchecked.status, 429, JSON.stringify(unchecked.body));
      assert.equal(unchecked.body.reason_code, 'partner_auth_throttled');
      assert.ok(typeof unchecked.body.correlation_id === 'string');
      assert.ok(Number(unchecked.retryAfter) >= 1 && Number(unchecked.retryAfter) <= 60, `Retry-After ${unchecked.retryAfter}`);
      // A good token never verified is refused the same: nothing of it was checked.
      const fresh = await partnerToken(signing, { tenant: 'acme', expiresIn: 1800 });
      assert.equal((await ask(url, fresh)).body.reason_code, 'partner_auth_throttled');
      assert.equal((await ask(url, 'not-a-jwt')).body.reason_code, 'partner_auth_throttled');
      // The partner app's token, verified before, costs no verification: it still passes.
      assert.equal((await ask(url, current)).body.reason_code, 'partner_tenant_not_active');
      // Its refusal's line comes after any line of the requests before it (one stream, in order): once it is in,
      // a token verified meanwhile would have logged already.
      await until(() => tenantRefusals() > tenantRefusalsBefore);
      assert.equal(refusedLogLines(control), verifiedBefore, 'no token was checked once the address was over its allowance');
      assert.equal(await throttled(control, 'address_auth_failures'), 3);
    } finally {
      await control.kill();
    }
  });

  it('behind a trusted proxy, limits the address the proxy forwarded, not the proxy', async () => {
    const { control, url } = await startControl([
      ...['--partner-trusted-proxies', '127.0.0.0/8', '--partner-auth-failure-burst', '2', '--partner-auth-failures-per-minute', '1'],
    ]);
    try {
      const forged = await partnerToken(forger, { tenant: 'acme' });
      const reason = async (forwardedFor?: string): Promise<string> =>
        (await ask(url, forged, forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor })).body.reason_code as string;
      assert.equal(await reason('203.0.113.7'), 'partner_token_invalid');
      assert.equal(await reason('203.0.113.7'), 'partner_token_invalid');
      assert.equal(await reason('203.0.113.7'), 'partner_auth_throttled');
      // What the caller wrote left of what the proxy appended changes nothing.
      assert.equal(await reason('203.0.113.8, 203.0.113.7'), 'partner_auth_throttled');
      // Nor when the proxy appends its own line after the caller's (HAProxy's option forwardfor) rather than
      // extending the caller's: the header is every line, not the first.
      assert.equal(await reasonWithLines(url, forged, ['203.0.113.9', '203.0.113.7']), 'partner_auth_throttled');
      assert.equal(await reason('203.0.113.8'), 'partner_token_invalid', 'another client behind the proxy has its own allowance');
      assert.equal(await reason(), 'partner_token_invalid', 'the proxy itself, without the header, is one more client');
    } finally {
      await control.kill();
    }
  });

  it("refuses a tenant's requests past its rate with Retry-After, and not another tenant's", async () => {
    const { control, url } = await startControl(['--partner-tenant-rate', '1', '--partner-tenant-burst', '5']);
    try {
      assert.equal(await throttled(control, 'tenant_rate'), 0);
      const acme = await partnerToken(signing, { tenant: 'acme' });
      const globex = await partnerToken(signing, { tenant: 'globex' });
      // Sent at once: 5 pass (a token back per second while they are answered), the rest are refused.
      const answers = await Promise.all(Array.from({ length: 25 }, () => ask(url, acme)));
      const limited = answers.filter((answer) => answer.status === 429);
      assert.ok(limited.length >= 1, 'some of 25 requests at once are over a burst of 5');
      for (const answer of limited) {
        assert.equal(answer.body.reason_code, 'partner_rate_limited');
        assert.ok(Number(answer.retryAfter) >= 1, `Retry-After ${answer.retryAfter}`);
      }
      for (const answer of answers.filter((candidate) => candidate.status !== 429))
        assert.equal(answer.body.reason_code, 'partner_tenant_not_active', 'a request within the rate goes on to the tenant check');
      assert.equal((await ask(url, globex)).body.reason_code, 'partner_tenant_not_active', "another tenant's requests are its own");
      assert.equal(await throttled(control, 'tenant_rate'), limited.length);
    } finally {
      await control.kill();
    }
  });
});
