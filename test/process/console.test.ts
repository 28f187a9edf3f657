import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchBrowser, screenshot, watchedPage } from '../helpers/browser.js';
import { MOBILE } from '../helpers/cdrs.js';
import { eventually, startMoneyWorld, type MoneyWorld } from '../helpers/money-world.js';

/**
 * The operator console in a real headless Chromium, against a real control plane and two sidecars serving the
 * fixture world: each page loads without a console error, the route simulator shows the sidecar's carrier
 * order, and a sidecar that stops shows as down at the next refresh.
 */
describe('operator console', () => {
  let world: MoneyWorld;
  let browser: Browser;
  let version: number;

  before(async () => {
    world = await startMoneyWorld({ sidecars: 2, controlArgs: ['--node-hosts', '127.0.0.1'] });
    for (const [index, sidecar] of world.sidecars.entries()) {
      const updated = await world.control.send('PUT', `/api/opensips-nodes/${index + 1}`, { sidecar_address: sidecar.url });
      assert.equal(updated.status, 200, JSON.stringify(updated.body));
    }
    const synced = await world.control.post('/api/opensips/routing/sync', {});
    assert.equal(synced.status, 200, JSON.stringify(synced.body));
    version = synced.body.snapshot_version as number;
    browser = await launchBrowser();
  });

  after(async () => {
    await browser.close();
    await world.stop();
  });

  it('serves its files with content types and nothing outside its directory', async () => {
    const index = await fetch(`${world.control.url}/console/`);
    assert.equal(index.status, 200);
    assert.match(index.headers.get('content-type') ?? '', /^text\/html/);
    assert.equal(index.headers.get('cache-control'), 'no-cache');
    const script = await fetch(`${world.control.url}/console/app.js`);
    assert.match(script.headers.get('content-type') ?? '', /^text\/javascript/);
    for (const path of ['/console/..%2F..%2Fpackage.json', '/console/%2e%2e', '/console/.tsbuildinfo', '/console/app.js.map'])
      assert.equal((await fetch(world.control.url + path)).status, 404, path);
  });

  it('refuses to simulate on a node it cannot ask, naming why', async () => {
    const created = await world.control.post('/api/opensips-nodes', { hostname: 'node-dark', mi_socket_address: 'http://127.0.0.1:9/mi' });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const dark = await world.control.post(`/api/console/nodes/${created.body.id}/route-simulator`, { customer_trunk_id: 10, dnis: MOBILE });
    assert.equal(dark.status, 409);
    assert.equal(dark.body.reason_code, 'sidecar_not_http');
    const missing = await world.control.post('/api/console/nodes/999/route-simulator', { customer_trunk_id: 10, dnis: MOBILE });
    assert.equal(missing.status, 404);
    assert.equal((await world.control.send('DELETE', `/api/opensips-nodes/${created.body.id}`)).status, 204);
  });

  it('shows every node with its sidecar and last sync, and a stopped sidecar as down within the refresh', async () => {
    const { page, errors } = await watchedPage(browser);
    await page.goto(`${world.control.url}/console/#network`);
    await page.locator('tr[data-node="node-1"][data-state="up"]').waitFor();
    await page.locator('tr[data-node="node-2"][data-state="up"]').waitFor();
    const row = await page.locator('tr[data-node="node-1"]').innerText();
    assert.match(row, new RegExp(`\\tv${version}\\t`), 'the snapshot version the sidecar serves');
    assert.match(row, new RegExp(`ok v${version} in \\d+ ms`), 'the last sync reached it');
    // Times in the operator's zone (the page runs in Australia/Sydney), the UTC instant on hover.
    assert.match((await page.locator('time').first().getAttribute('title')) ?? '', /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
    await screenshot(page, 'network');

    await world.sidecars[1].kill();
    // Polled by the page every REFRESH_SECONDS (5 s): waiting for the row to turn is not a fixed sleep.
    await page.locator('tr[data-node="node-2"][data-state="down"]').waitFor({ timeout: 20_000 });
    assert.match(await page.getByRole('status').innerText(), /1 of 2 sidecars down/);
    assert.equal(await page.locator('tr[data-node="node-1"]').getAttribute('data-state'), 'up');
    await screenshot(page, 'network-node-down');
    const unreachable = await world.control.post('/api/console/nodes/2/route-simulator', { customer_trunk_id: 10, dnis: MOBILE });
    assert.equal(unreachable.status, 502);
    assert.equal(unreachable.body.reason_code, 'sidecar_unreachable');
    assert.deepEqual(errors, []);
    await page.close();
  });

  it('simulates a route on a node and shows the checks and the carriers in the sidecar’s LCR order', async () => {
    // Prepaid: the account needs credit for the call to route; the node learns of it on its own money rounds.
    assert.equal((await world.control.post('/api/balances/customer/1/balance/credit', { amount: '10.00' })).status, 200);
    let expected = { status: 0, body: {} as Record<string, unknown> };
    await eventually(async () => {
      expected = await world.sidecars[0].post('/api/admin/route-simulator', { customer_trunk_id: 10, dnis: MOBILE, duration_seconds: 60 });
      assert.equal(expected.body.allowed, true, JSON.stringify(expected.body));
    }, 30_000);
    const order = (expected.body.carriers as { carrier_name: string }[]).map((carrier) => carrier.carrier_name);

    const { page, errors } = await watchedPage(browser);
    await page.goto(`${world.control.url}/console/#simulator`);
    await page.locator('#node option', { hasText: 'node-1' }).waitFor({ state: 'attached' });
    await page.getByLabel('Node').selectOption({ label: 'node-1' });
    await page.getByLabel('Customer trunk').fill('10');
    await page.getByLabel('Number dialled').fill(MOBILE);
    // Submitted from the keyboard, as an operator would.
    await page.getByLabel('Duration (seconds)').press('Enter');
    await page.locator('#carriers').waitFor();
    const shown = await Promise.all((await page.locator('#carriers tbody tr').all()).map((row) => row.getAttribute('data-carrier')));
    assert.deepEqual(shown, order);
    // The fixture world's order for a mobile number: the US carrier is cheaper once converted to AUD.
    assert.deepEqual(shown.slice(0, 2), ['Carrier B - US', 'Carrier A - Sydney']);
    assert.match(await page.locator('#verdict').innerText(), /routed via Carrier B - US/);
    assert.ok((await page.locator('#checks tbody tr').count()) > 0);
    await screenshot(page, 'route-simulator');
    assert.deepEqual(errors, []);
    await page.close();
  });
});
