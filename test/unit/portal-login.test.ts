import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import type { IncomingRequest } from '../../src/core/http/server.js';
import { authRoutes } from '../../sync/portal/auth-routes.js';
import { hashPassword, verifyPassword } from '../../sync/portal/password.js';
import type { ConfigStore } from '../../sync/store/config-store.js';
import { LoginThrottle } from '../../sync/portal/throttle.js';
import { normaliseUsername, usernameProblem } from '../../sync/portal/username.js';

/** The portal's login pieces on their own: the throttle's window on a clock the test moves, passwords, usernames, tokens. */
describe('portal login', () => {
  it('holds a username back after 5 failures until the oldest leaves the 15-minute window', () => {
    let now = 1_000_000;
    const throttle = new LoginThrottle(undefined, () => now);
    for (let i = 0; i < 4; i++) {
      throttle.failed('acme@wholesale', '192.0.2.1');
      now += 1000;
    }
    assert.equal(throttle.retryAfterSeconds('acme@wholesale', '192.0.2.1'), 0, 'four failures: still tried');
    throttle.failed('acme@wholesale', '192.0.2.1');
    // The first failure was 4 s before the fifth: it leaves the window 15 min after it happened.
    assert.equal(throttle.retryAfterSeconds('acme@wholesale', '192.0.2.9'), 900 - 4);
    assert.equal(throttle.retryAfterSeconds('other@wholesale', '192.0.2.9'), 0, 'another username, another address');
    now += (900 - 4) * 1000 - 1;
    assert.equal(throttle.retryAfterSeconds('acme@wholesale', '192.0.2.9'), 1);
    now += 1;
    assert.equal(throttle.retryAfterSeconds('acme@wholesale', '192.0.2.9'), 0, 'the oldest failure left the window');
  });

  it('holds an address back after 20 failures across usernames; a success clears only the username', () => {
    let now = 5_000_000;
    const throttle = new LoginThrottle(undefined, () => now);
    for (let i = 0; i < 4; i++) throttle.failed('acme@wholesale', '198.51.100.7');
    // A login is counted as failed while its password is checked; this one was right.
    throttle.failed('acme@wholesale', '198.51.100.7');
    throttle.succeeded('acme@wholesale', '198.51.100.7');
    for (let i = 0; i < 15; i++) throttle.failed(`guess${i}@wholesale`, '198.51.100.7');
    assert.equal(throttle.retryAfterSeconds('acme@wholesale', '198.51.100.7'), 0, '19 from the address');
    throttle.failed('last@wholesale', '198.51.100.7');
    assert.equal(throttle.retryAfterSeconds('acme@wholesale', '198.51.100.7'), 900);
    assert.equal(throttle.retryAfterSeconds('acme@wholesale', '198.51.100.8'), 0);
    now += 900_000;
    assert.equal(throttle.retryAfterSeconds('acme@wholesale', '198.51.100.7'), 0);
  });

  it('counts a login while its password is checked: guesses sent at once get no more tries than one after another', async () => {
    // No account by that name: each guess is checked against the decoy hash, as long as a real one takes.
    const store = {
      list: () => Promise.resolve({ rows: [], total: 0 }),
      get: () => Promise.resolve(null),
    } as unknown as ConfigStore;
    const [login] = authRoutes({
      store,
      log: pino({ level: 'silent' }),
      maxBodyBytes: 1024,
      throttle: new LoginThrottle(),
      allowlisted: () => Promise.resolve(false),
    });
    const guess = (i: number): IncomingRequest => ({
      method: 'POST',
      path: '/api/auth/login',
      params: {},
      remoteAddress: '192.0.2.1',
      query: '',
      contentType: 'application/json',
      body: Buffer.from(JSON.stringify({ username: 'acme', password: `guess-${i}-password` })),
    });
    const answers = await Promise.all(Array.from({ length: 8 }, async (_, i) => login.handler(guess(i))));
    assert.deepEqual(
      answers.map((answer) => answer.status).sort(),
      [401, 401, 401, 401, 401, 429, 429, 429],
      'five passwords tried, as five sent one after another would be',
    );
  });

  it('keeps passwords as salted scrypt hashes that verify only the same password', async () => {
    const first = await hashPassword('correct horse');
    const second = await hashPassword('correct horse');
    assert.match(first, /^scrypt\$32768\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    assert.notEqual(first, second, 'a salt of its own per hash');
    assert.equal(first.includes('correct horse'), false);
    assert.equal(await verifyPassword('correct horse', first), true);
    assert.equal(await verifyPassword('correct horse', second), true);
    assert.equal(await verifyPassword('Correct horse', first), false);
    // A row tampered to ask for a huge cost is refused, not computed.
    assert.equal(await verifyPassword('correct horse', first.replace('$32768$', '$1073741824$')), false);
    assert.equal(await verifyPassword('correct horse', 'bcrypt$2b$10$whatever'), false);
  });

  it('stores usernames with @wholesale, lower-cased, and reads Bearer tokens only', () => {
    assert.equal(normaliseUsername(' Acme '), 'acme@wholesale');
    assert.equal(normaliseUsername('acme@wholesale'), 'acme@wholesale');
    assert.equal(normaliseUsername('ACME@Wholesale'), 'acme@wholesale');
    assert.equal(usernameProblem('@wholesale'), 'must not be empty');
    assert.equal(usernameProblem('two words'), 'must not contain spaces or control characters');
    assert.equal(usernameProblem('acme'), null);
  });
});
