import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MOBILE } from '../helpers/cdrs.js';
import { eventually, type MoneyWorld } from '../helpers/money-world.js';
import { startPartnerWorld, type PartnerWorld } from '../helpers/partner-world.js';
import type { SidecarProcess } from '../helpers/sidecar.js';

/**
 * Issue 19 on issue 18's channel, with real processes: three sidecars follow one control plane's delta log, and
 * no routing sync ever reaches them (their nodes have no sidecar address to push a snapshot to; the test checks
 * each keeps the snapshot version it started with). A setup_call is usable for call/auth on all three, and
 * delete_account, a product deactivated or its tenant suspended takes it away on all three: by deltas alone.
 * Every check waits for a condition, never for time.
 */
const ACCESS_NUMBER = '61280000009';
/** Trunk 10's network in the fixture world: the DID provider's trunk the access-number calls arrive on. */
const SOURCE = '203.0.113.77';

async function auth(node: SidecarProcess, caller: string): Promise<Record<string, any>> {
  const answer = await node.post('/api/opensips/call/auth', {
    source_ip: SOURCE,
    call_id: `partner-live-${Math.random()}`,
    ani: caller,
    dnis: ACCESS_NUMBER,
  });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return answer.body as Record<string, any>;
}

describe('partner changes reach every node live', { timeout: 300_000 }, () => {
  let world: MoneyWorld;
  let partner: PartnerWorld['partner'];
  let account: PartnerWorld['account'];
  let tenantId: number;
  let productId: number;
  let versions: number[] | undefined;

  before(async () => {
    ({ world, partner, account, tenantId, productId } = await startPartnerWorld(ACCESS_NUMBER, 3));
    versions = await Promise.all(world.sidecars.map(async (node) => (await node.get('/api/snapshot')).body.version as number));
  });
  after(async () => {
    // Only deltas: no node took another snapshot.
    if (versions !== undefined)
      for (const [index, node] of world.sidecars.entries())
        assert.equal((await node.get('/api/snapshot')).body.version, versions[index], `${node.url} took no snapshot`);
    await (world as MoneyWorld | undefined)?.stop();
  });

  /** `check` passes on all three nodes (waited for: a delta takes a round trip). */
  const onEvery = (check: (node: SidecarProcess) => Promise<void>): Promise<void> =>
    Promise.all(world.sidecars.map((node) => eventually(() => check(node), 10_000))).then(() => undefined);
  const translated = (caller: string, retailAccountId: number) =>
    onEvery(async (node) => {
      const answer = await auth(node, caller);
      assert.equal(answer.allowed, true, JSON.stringify(answer));
      assert.equal(answer.customer_trunk_id, 10);
      assert.equal(answer.dnis, MOBILE, 'the translated number');
      assert.equal(answer.retail_account_id, retailAccountId);
    });
  const refused = (caller: string) => onEvery(async (node) => assert.equal((await auth(node, caller)).reason_code, 'no_call_translation'));
  const setup = async (code: string, caller: string): Promise<number> => {
    const saved = await partner('setup_call', {
      a_number: `+${caller}`,
      b_number: `+${MOBILE}`,
      access_number: `+${ACCESS_NUMBER}`,
      account_number: code,
      ttl: 600,
    });
    assert.equal(saved.status, 200, saved.text);
    return saved.body.insertId as number;
  };
  /**
   * The retail account call/auth names once node 1 has the caller's translation (its id at the centre is not on
   * the partner API); `not`: an account whose translation is to be replaced first.
   */
  const servedAccount = async (caller: string, not?: number): Promise<number> => {
    let id = 0;
    await eventually(async () => {
      const answer = await auth(world.sidecars[0], caller);
      assert.equal(answer.allowed, true, JSON.stringify(answer));
      assert.notEqual(answer.retail_account_id, not);
      id = answer.retail_account_id as number;
    }, 10_000);
    assert.ok(Number.isSafeInteger(id) && id > 0);
    return id;
  };

  it('a setup_call is usable on all three nodes, and delete_account ends it on all three', async () => {
    const code = await account(5);
    const caller = '61255500201';
    await refused(caller);
    await setup(code, caller);
    await translated(caller, await servedAccount(caller));

    assert.equal((await partner('delete_account', { account: code, reason: 'closed' })).status, 200);
    await refused(caller);
  });

  it('the newest setup_call for a caller and access number wins on every node', async () => {
    const first = await account(5);
    const second = await account(5);
    const caller = '61255500202';
    await setup(first, caller);
    const firstId = await servedAccount(caller);
    await translated(caller, firstId);
    await setup(second, caller);
    await translated(caller, await servedAccount(caller, firstId));
    // Ending the newer one leaves none: the one it replaced was ended when it was set up.
    assert.equal((await partner('delete_account', { account: second })).status, 200);
    await refused(caller);
  });

  it('a product deactivated, or its tenant suspended, takes its access number away on every node, and back', async () => {
    const code = await account(5);
    const caller = '61255500203';
    await setup(code, caller);
    const id = await servedAccount(caller);
    await translated(caller, id);
    // No longer an access number: the dialled number is an ordinary call of trunk 10, billed to no retail account.
    const ordinary = () =>
      onEvery(async (node) => {
        const answer = await auth(node, caller);
        assert.equal(answer.retail_account_id, undefined, JSON.stringify(answer));
        assert.notEqual(answer.reason_code, 'no_call_translation');
      });

    assert.equal((await world.control.send('PUT', `/api/partner-products/${productId}`, { status: 'suspended' })).status, 200);
    await ordinary();
    assert.equal((await world.control.send('PUT', `/api/partner-products/${productId}`, { status: 'active' })).status, 200);
    await translated(caller, id);

    assert.equal((await world.control.send('PUT', `/api/partner-tenants/${tenantId}`, { status: 'suspended' })).status, 200);
    await ordinary();
    assert.equal((await world.control.send('PUT', `/api/partner-tenants/${tenantId}`, { status: 'active' })).status, 200);
    await translated(caller, id);
  });
});
