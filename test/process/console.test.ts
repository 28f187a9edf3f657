import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchBrowser, screenshot, watchedPage } from '../helpers/browser.js';
import { MOBILE } from '../helpers/cdrs.js';
import { eventually, startMoneyWorld, type MoneyWorld } from '../helpers/money-world.js';
import { SidecarProcess } from '../helpers/sidecar.js';

/**
 * The operator console in a real headless Chromium, against a real control plane and two sidecars serving the
 * fixture world: each page loads without a console error, the route simulator shows the sidecar's carrier
 * order, a sidecar that stops shows as down at the next refresh, the sync button runs a sync and shows each
 * node's result, a credit updates the balance shown, a CSV with a bad line shows that line's error, and the
 * Live charts show the calls the sidecars decided. The centre samples the sidecars' metrics every second here.
 */
/** OpenSIPS's first call/route for a number on the fixture's customer trunk 10. */
const routeBody = (dnis: string): Record<string, unknown> => ({
  customer_trunk_id: 10,
  dnis,
  attempt: 1,
  tried_carrier_trunk_ids: [],
  tried_gateway_ids: [],
});

describe('operator console', () => {
  let world: MoneyWorld;
  let browser: Browser;
  let version: number;

  before(async () => {
    world = await startMoneyWorld({ sidecars: 2, controlArgs: ['--node-hosts', '127.0.0.1', '--console-sample-seconds', '1'] });
    for (const [index, sidecar] of world.sidecars.entries()) {
      const updated = await world.control.send('PUT', `/api/opensips-nodes/${index + 1}`, { sidecar_address: sidecar.url });
      assert.equal(updated.status, 200, JSON.stringify(updated.body));
    }
    const synced = await world.control.post('/api/opensips/routing/sync', {});
    assert.equal(synced.status, 200, JSON.stringify(synced.body));
    version = synced.body.snapshot_version as number;
    browser = await launchBrowser();
  });

  // Either may be missing when before() failed part-way (no Chromium, say): the world still stops, or its
  // processes would hold the file open until the runner's timeout.
  after(async () => {
    await (browser as Browser | undefined)?.close();
    await (world as MoneyWorld | undefined)?.stop();
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
    // The seeded world's live rows are changes in the delta log; each node shows the last it applied, the centre's.
    const network = await world.control.get('/api/console/network');
    const centreSeq = network.body.delta_seq as number;
    assert.ok(centreSeq > 0, 'the seed went through the delta log');
    await page.locator('tr[data-node="node-1"] td', { hasText: new RegExp(`^#${centreSeq}$`) }).waitFor();
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
    // At a time of the operator's choosing (the page runs in Australia/Sydney: 10:00 there is midnight UTC in
    // June): deck 1's 6140 price from 2099 is the one simulated, and the moment is shown with its UTC instant.
    await page.getByLabel('Time (optional, your time zone)').fill('2099-06-01T10:00:00');
    await page.getByLabel('Duration (seconds)').press('Enter');
    await page.locator('#result p.muted', { hasText: '$0.01 AUD/min' }).waitFor();
    assert.equal(await page.locator('#result p.muted time').getAttribute('title'), '2099-06-01 00:00:00 UTC');
    assert.deepEqual(errors, []);
    await page.close();
  });
  it('refuses malformed and hostile input on its read endpoints with a stable code', async () => {
    const refused = [
      '/api/console/syncs?limit=0',
      '/api/console/syncs?limit=51',
      '/api/console/syncs?limit=1e3',
      '/api/console/syncs?limit=-1',
      '/api/console/syncs?other=1',
      '/api/console/live?from=0',
      '/api/console/accounts/robot/1/leases',
      '/api/console/accounts/customer/0/leases',
      '/api/console/accounts/customer/1e3/leases',
      '/api/console/accounts/customer/%31/leases',
      '/api/console/accounts/customer/99999999999999999999/leases',
      '/api/console/accounts/customer/1/leases?node=x',
      '/api/console/rates',
      '/api/console/rates?number=',
      '/api/console/rates?number=61a',
      "/api/console/rates?number=61'%3B--",
      '/api/console/rates?number=%2B%2B61',
      '/api/console/rates?number=123456789012345678901',
      '/api/console/rates?number=61&number=62x',
      '/api/console/rates?number=61&deck=1',
      '/api/console/syncs?limit=1&limit=2',
    ];
    for (const path of refused) {
      const answer = await world.control.send('GET', path);
      assert.equal(answer.status, 400, `${path}: ${JSON.stringify(answer.body)}`);
      assert.equal(answer.body.reason_code, 'invalid_parameter', path);
    }
    const rates = await world.control.send('GET', `/api/console/rates?number=%2B${MOBILE}`);
    assert.equal(rates.status, 200);
    const sell = (rates.body.data as { name: string; rate: { prefix: string; rate_per_minute: string } | null }[]).find(
      (deck) => deck.name === 'Sell A',
    );
    assert.deepEqual([sell?.rate?.prefix, sell?.rate?.rate_per_minute], ['614', '0.0250']);
    assert.deepEqual((await world.control.send('GET', '/api/console/accounts/customer/424242/leases')).body, { data: [] });
  });

  it('shows each node’s decisions per second, p99 and money rounds', async () => {
    // Traffic on node-1: the centre's next samples of its metrics show it (node-2 was stopped above).
    for (let i = 0; i < 5; i++) {
      const routed = await world.sidecars[0].post('/api/opensips/call/route', routeBody(MOBILE));
      assert.equal(routed.body.allowed, true, JSON.stringify(routed.body));
    }
    const { page, errors } = await watchedPage(browser);
    await page.goto(`${world.control.url}/console/#network`);
    const row = page.locator('tr[data-node="node-1"]');
    await row.filter({ hasText: /\/s p99 ≤ [0-9.]+ ms/ }).waitFor({ timeout: 20_000 });
    // A prepaid call admitted on node-1 (credited in the simulator test) leases from the centre on a money round.
    const admitted = await world.sidecars[0].post('/api/opensips/call/admit', {
      customer_trunk_id: 10,
      dnis: MOBILE,
      call_id: 'console-lease-1',
    });
    assert.equal(admitted.body.allowed, true, JSON.stringify(admitted.body));
    await row.filter({ hasText: /round #\d+ · [1-9]\d* leases?/ }).waitFor({ timeout: 20_000 });
    assert.equal(await page.locator('tr[data-node="node-2"]').getAttribute('data-state'), 'down');
    // The stopped node's last figures are not shown as if they were current.
    assert.match(await page.locator('tr[data-node="node-2"]').innerText(), /no metrics/);
    await screenshot(page, 'network-load');
    assert.deepEqual(errors, []);
    await page.close();
  });

  it('runs a full sync from the Sync page and shows its per-node result', async () => {
    const { page, errors } = await watchedPage(browser);
    await page.goto(`${world.control.url}/console/#sync`);
    await page.locator('#syncs tbody tr').first().waitFor();
    const before = await page.locator('#syncs tbody tr').count();
    await page.getByRole('button', { name: 'Run a full sync' }).click();
    await page.locator('#sync-done').waitFor({ timeout: 60_000 });
    assert.match(await page.locator('#sync-done').innerText(), /Sync done: snapshot v\d+/);
    await page.locator('#syncs tbody tr').nth(before).waitFor();
    const newest = page.locator('#syncs tbody tr').first();
    assert.match(await newest.locator('li[data-node="node-1"]').innerText(), /ok v\d+ \d+ ms/);
    // node-2's sidecar is stopped: its push failed, named on the row and in the warnings.
    assert.match(await newest.locator('li[data-node="node-2"]').innerText(), /failed/);
    assert.match(await newest.innerText(), /node 2 \(node-2\) did not take the snapshot/);
    assert.equal(await newest.getAttribute('class'), 'down');
    // The live changes between syncs: node-1 follows the centre's delta log, the newest change listed first.
    const centreSeq = (await world.control.get('/api/opensips/deltas')).body.last_seq as number;
    assert.match(await page.locator('#live-nodes caption').innerText(), new RegExp(`#${centreSeq}$`));
    await page.locator('#live-nodes tr[data-node="node-1"]', { hasText: 'up to date' }).waitFor();
    // node-2's sidecar was stopped by an earlier test: whatever it applied, its channel is shown silent.
    await page.locator('#live-nodes tr[data-node="node-2"]', { hasText: 'silent' }).waitFor({ timeout: 30_000 });
    assert.match(await page.locator('#live-changes tbody tr').first().innerText(), new RegExp(`^#${centreSeq}\t`));
    await screenshot(page, 'sync');
    assert.deepEqual(errors, []);
    await page.close();
  });

  it('shows a sidecar back up but serving an older snapshot than the last sync as behind', async () => {
    // node-2 missed the syncs since it stopped: restarted from its own store, it serves the version it had.
    const stopped = world.sidecars[1];
    world.sidecars[1] = await SidecarProcess.start({ dataDir: stopped.dataDir, args: world.sidecarArgs(1) });
    assert.equal((await world.control.send('PUT', '/api/opensips-nodes/2', { sidecar_address: world.sidecars[1].url })).status, 200);
    const { page, errors } = await watchedPage(browser);
    await page.goto(`${world.control.url}/console/#network`);
    await page.locator('tr[data-node="node-2"][data-state="up"][data-behind="true"]').waitFor({ timeout: 20_000 });
    assert.equal(await page.locator('tr[data-node="node-2"]').getAttribute('class'), 'behind');
    assert.match(await page.locator('tr[data-node="node-2"]').innerText(), /\tv\d+ behind\t/);
    assert.match(await page.getByRole('status').innerText(), /All 2 sidecars up · 1 behind the last sync/);
    assert.equal(await page.locator('tr[data-node="node-1"]').getAttribute('data-behind'), null);
    await screenshot(page, 'network-node-behind');
    assert.deepEqual(errors, []);
    await page.close();
  });

  it('finds an account, and a confirmed credit updates the balance shown', async () => {
    const { page, errors } = await watchedPage(browser);
    await page.goto(`${world.control.url}/console/#accounts`);
    await page.getByLabel('Search customer accounts').fill('acme');
    await page.locator('tr[data-account="1"]').waitFor();
    assert.equal(await page.locator('#accounts tbody tr').count(), 1);
    await page.getByRole('button', { name: 'Acme Telecom' }).click();
    await page.locator('#balance-amount').waitFor();
    const start = (await world.control.send('GET', '/api/balances/customer/1/balance')).body.balance as string;
    assert.equal(await page.locator('#balance-amount').innerText(), `$${start} AUD`);

    await page.getByLabel('Amount (AUD)').fill('12.34');
    await page.getByLabel('Amount (AUD)').press('Enter');
    // Nothing is applied until the operator confirms.
    await page.getByRole('button', { name: /Confirm credit of \$12\.34 AUD/ }).waitFor();
    assert.equal((await world.control.send('GET', '/api/balances/customer/1/balance')).body.balance, start);
    await page.getByRole('button', { name: /Confirm credit/ }).click();
    await page.getByRole('status').filter({ hasText: 'credit applied' }).waitFor();
    const after = (await world.control.send('GET', '/api/balances/customer/1/balance')).body.balance as string;
    assert.notEqual(after, start);
    assert.equal(await page.locator('#balance-amount').innerText(), `$${after} AUD`);
    assert.match(await page.locator('#transactions tbody tr').first().innerText(), /credit\t\$12\.34 AUD/);
    assert.ok((await page.locator('#leases tbody tr').count()) >= 1, 'node-1 holds a lease on the prepaid account');
    await screenshot(page, 'accounts');
    assert.deepEqual(errors, []);
    await page.close();
  });

  it('shows a number’s rate in each deck, and a CSV upload’s per-line errors', async () => {
    const { page, errors } = await watchedPage(browser);
    await page.goto(`${world.control.url}/console/#rates`);
    await page.getByLabel('Number').fill(MOBILE);
    await page.getByLabel('Number').press('Enter');
    await page.locator('#number-rates tr[data-deck="Sell A"]').waitFor();
    assert.match(await page.locator('#number-rates tr[data-deck="Sell A"]').innerText(), /614\tAustralia Mobile\t\$0\.025 AUD\/min/);

    await page.locator('#upload-deck option', { hasText: 'Cost idle' }).waitFor({ state: 'attached' });
    await page.getByLabel('Deck', { exact: true }).selectOption({ label: 'Cost idle (AUD)' });
    const csv = 'prefix,destination_name,rate,billing_increment,rate_type\n4477,UK Mobile,0.01,1/1,per_minute\n61a,Bad,0.01,,\n';
    await page.getByLabel('Rate sheet (CSV)').setInputFiles({ name: 'deck.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
    await page.getByRole('button', { name: 'Upload' }).click();
    await page.locator('#upload-errors li').first().waitFor();
    assert.deepEqual(await page.locator('#upload-errors li').allInnerTexts(), ['line 3: invalid prefix "61a"']);
    assert.match(await page.getByRole('alert').innerText(), /CSV refused: nothing imported/);
    await screenshot(page, 'rates-upload-error');

    await page
      .getByLabel('Rate sheet (CSV)')
      .setInputFiles({ name: 'deck.csv', mimeType: 'text/csv', buffer: Buffer.from(csv.split('\n').slice(0, 2).join('\n')) });
    await page.getByRole('button', { name: 'Upload' }).click();
    await page.getByRole('status').filter({ hasText: 'Imported 1 new' }).waitFor();
    await screenshot(page, 'rates');
    // The one error Chromium logs is the refused sheet's 400, which the page shows as above.
    assert.deepEqual(errors, ['Failed to load resource: the server responded with a status of 400 (Bad Request)']);
    await page.close();
  });

  it('charts the calls the sidecars decided in the last hour', async () => {
    const node = world.sidecars[0];
    assert.equal((await node.post('/api/opensips/call/route', routeBody(MOBILE))).body.allowed, true);
    assert.equal((await node.post('/api/opensips/call/route', routeBody('999'))).body.allowed, false);
    const failover = await node.post('/api/opensips/call/failover', { customer_trunk_id: 10, carrier_trunk_id: 21, failure_code: 503 });
    assert.equal(failover.status, 200, JSON.stringify(failover.body));
    // The centre samples every second: the page is opened once its ring holds the failover.
    await eventually(async () => {
      const live = await world.control.send('GET', '/api/console/live');
      assert.ok(
        (live.body.groups.failover as { key: string }[]).some((series) => series.key === '503'),
        JSON.stringify(live.body),
      );
    }, 20_000);
    const { page, errors } = await watchedPage(browser);
    await page.goto(`${world.control.url}/console/#live`);
    await page.locator('#chart-carriers li', { hasText: 'Carrier B - US' }).waitFor();
    assert.match(await page.locator('#chart-failovers').innerText(), /SIP 503: 1/);
    assert.ok((await page.locator('#chart-calls li', { hasText: /^refused: / }).count()) >= 1);
    assert.ok((await page.locator('#chart-carriers svg rect').count()) >= 1);
    await screenshot(page, 'live');
    assert.deepEqual(errors, []);
    await page.close();
  });
});
