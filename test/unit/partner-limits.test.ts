import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ClientAddresses, parseTrustedProxies } from '../../sync/partner/client-address.js';
import { PartnerLimits, ThrottledRequest } from '../../sync/partner/limits.js';
import { TokenBuckets } from '../../sync/partner/token-buckets.js';

/** The partner API's limits (sync/partner/limits.ts) on a clock the test moves. */
describe('partner limits', () => {
  it('lets a key spend its burst, then refuses it until a token came back, saying how long', () => {
    let now = 1_000_000;
    const buckets = new TokenBuckets({ perMinute: 120, burst: 3 }, 100, () => now);
    for (let i = 0; i < 3; i++) assert.equal(buckets.take('a'), 0, `request ${i + 1} of the burst`);
    assert.equal(buckets.take('a'), 500, 'one token comes back in half a second at 2 a second');
    assert.equal(buckets.take('b'), 0, 'another key has its own bucket');
    now += 499;
    assert.equal(buckets.take('a'), 1, 'a refused take spends nothing and the wait shrinks');
    now += 1;
    assert.equal(buckets.take('a'), 0);
    assert.equal(buckets.take('a'), 500);
    now += 60_000;
    for (let i = 0; i < 3; i++) assert.equal(buckets.take('a'), 0, 'refilled to the burst, no further');
    assert.notEqual(buckets.take('a'), 0);
  });

  it('gives back a token taken for something that did not count', () => {
    const buckets = new TokenBuckets({ perMinute: 60, burst: 1 }, 100, () => 0);
    assert.equal(buckets.take('a'), 0);
    buckets.giveBack('a');
    assert.equal(buckets.take('a'), 0);
    assert.notEqual(buckets.take('a'), 0);
  });

  it('holds at most its capacity of keys under a spray, dropping the one touched least recently', () => {
    const buckets = new TokenBuckets({ perMinute: 60, burst: 1 }, 1000, () => 0);
    assert.equal(buckets.take('kept'), 0);
    for (let i = 0; i < 5000; i++) {
      buckets.take(`spray-${i}`);
      if (i % 100 === 0) assert.notEqual(buckets.take('kept'), 0, 'a key in use stays, empty');
      assert.ok(buckets.size <= 1000);
    }
    assert.equal(buckets.size, 1000);
    assert.notEqual(buckets.take('kept'), 0);
    assert.equal(buckets.take('spray-0'), 0, 'an idle key dropped is a full bucket again');
  });

  it('keys clients by socket address unless a trusted proxy forwards them', () => {
    const direct = new ClientAddresses([]);
    assert.equal(direct.trustsProxies, false);
    assert.equal(direct.keyOf('203.0.113.9', '198.51.100.1'), '203.0.113.9', 'a caller cannot name its own address');
    assert.equal(direct.keyOf('0000:0000:0000:0000:0000:ffff:cb00:7109', ''), '203.0.113.9', 'IPv4-mapped is IPv4');
    assert.equal(direct.keyOf('2001:db8:1:2:aaaa::1', ''), '2001:db8:1:2::/64');
    assert.equal(direct.keyOf('2001:db8:1:2:bbbb::7', ''), '2001:db8:1:2::/64', 'one /64 is one client');

    const proxied = new ClientAddresses(parseTrustedProxies('10.0.0.0/8, 192.0.2.1'));
    assert.equal(proxied.trustsProxies, true);
    assert.equal(proxied.keyOf('10.1.2.3', '198.51.100.1'), '198.51.100.1');
    assert.equal(proxied.keyOf('10.1.2.3', '6.6.6.6, 198.51.100.1, 192.0.2.1'), '198.51.100.1', 'past every trusted hop, no further');
    assert.equal(proxied.keyOf('10.1.2.3', ''), '10.1.2.3', 'no header: the proxy itself');
    assert.equal(proxied.keyOf('10.1.2.3', 'nonsense'), '10.1.2.3', 'a hop that is not an address: the proxy itself');
    // A proxy that writes the client's port with its address (Azure's Application Gateway does) still names it: read
    // as the proxy itself, every client behind it shared one allowance, which one forger could spend for all.
    assert.equal(proxied.keyOf('10.1.2.3', '198.51.100.1:50123'), '198.51.100.1');
    assert.equal(proxied.keyOf('10.1.2.3', '[2001:db8:1:2::5]:443'), '2001:db8:1:2::/64');
    assert.equal(proxied.keyOf('10.1.2.3', '[2001:db8:1:2::5]'), '2001:db8:1:2::/64');
    assert.equal(proxied.keyOf('10.1.2.3', '198.51.100.1:port'), '10.1.2.3', 'not a port: the proxy itself');
    assert.equal(proxied.keyOf('10.1.2.3', '10.9.9.9'), '10.9.9.9', 'every hop trusted: the first');
    assert.equal(proxied.keyOf('203.0.113.9', '198.51.100.1'), '203.0.113.9', "an untrusted peer's header is not read");
    assert.throws(() => parseTrustedProxies('10.0.0.0/8,proxy.example'), /proxy\.example/);
  });

  it('refuses an address its unverified tokens past the allowance, and a tenant past its rate, with Retry-After', () => {
    let now = 0;
    const limits = new PartnerLimits(
      { authFailures: { perMinute: 1, burst: 2 }, tenantRate: { perMinute: 600, burst: 2 }, trustedProxies: [] },
      () => now,
    );
    limits.spendAuthAttempt('203.0.113.9');
    limits.authAttemptPassed('203.0.113.9');
    limits.spendAuthAttempt('203.0.113.9');
    limits.spendAuthAttempt('203.0.113.9');
    const refused = (run: () => void): ThrottledRequest => {
      try {
        run();
      } catch (error) {
        assert.ok(error instanceof ThrottledRequest);
        return error;
      }
      assert.fail('not refused');
    };
    const address = refused(() => limits.spendAuthAttempt('203.0.113.9'));
    assert.equal(address.code, 'partner_auth_throttled');
    assert.equal(address.status, 429);
    assert.equal(address.retryAfterSeconds, 60);
    limits.spendTenantRequest('acme');
    limits.spendTenantRequest('acme');
    const tenant = refused(() => limits.spendTenantRequest('acme'));
    assert.equal(tenant.code, 'partner_rate_limited');
    assert.equal(tenant.retryAfterSeconds, 1, 'at least a second');
    limits.spendTenantRequest('globex');
    now += 100;
    limits.spendTenantRequest('acme');
    const unlimited = new PartnerLimits({ authFailures: { perMinute: 60, burst: 1 }, tenantRate: null, trustedProxies: [] });
    for (let i = 0; i < 10_000; i++) unlimited.spendTenantRequest('acme');
  });
});
