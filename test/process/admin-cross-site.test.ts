import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { SidecarProcess } from '../helpers/sidecar.js';

/**
 * The admin API trusts the caller's address (auth_ips), which a browser on an operator's machine has whatever
 * page it shows. A page from another site may make that browser POST to the control plane: a body sent as a
 * Blob has no Content-Type, so no CORS preflight stops it, and the admin API reads a body without one as JSON.
 * Such a request (Sec-Fetch-Site cross-site or same-site, or an Origin that is not the control plane's own)
 * is refused before it changes anything; the console's own requests and those of scripts (neither header)
 * are not.
 */

interface Answer {
  status: number;
  body: any;
}

/** A POST as a browser sends a Blob body: no Content-Type, and the headers given. */
function post(port: number, path: string, body: string, headers: Record<string, string>): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const sent = request(
      { host: '127.0.0.1', port, path, method: 'POST', headers: { ...headers, 'content-length': Buffer.byteLength(body) } },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => resolve({ status: response.statusCode!, body: text === '' ? null : JSON.parse(text) }));
      },
    );
    sent.on('error', reject);
    sent.end(body);
  });
}

describe('admin API requests made by another site through an operator browser', () => {
  let control: SidecarProcess;

  before(async () => {
    control = await SidecarProcess.startControlPlane();
  });

  after(async () => {
    await control.kill();
  });

  const allowlisted = async (ip: string): Promise<boolean> =>
    ((await control.get('/api/auth/ips')).body as { ip_address: string }[]).some((row) => row.ip_address === ip);

  it('refuses a cross-site POST (Sec-Fetch-Site) and changes nothing', async () => {
    const answer = await post(control.port, '/api/auth/ips', JSON.stringify({ ip_address: '198.51.100.7' }), {
      origin: 'http://attacker.example',
      'sec-fetch-site': 'cross-site',
    });
    assert.equal(answer.status, 403, JSON.stringify(answer.body));
    assert.equal(answer.body.reason_code, 'cross_site_request');
    assert.equal(await allowlisted('198.51.100.7'), false);
  });

  it('refuses a POST from a sibling site, and one whose Origin is another host (a browser without Sec-Fetch-Site)', async () => {
    const browsers: Record<string, string>[] = [
      { origin: 'http://other.example', 'sec-fetch-site': 'same-site' },
      { origin: 'http://attacker.example' },
      { origin: 'null' },
    ];
    for (const headers of browsers) {
      const answer = await post(control.port, '/api/auth/ips', JSON.stringify({ ip_address: '198.51.100.8' }), headers);
      assert.equal(answer.status, 403, `${JSON.stringify(headers)}: ${JSON.stringify(answer.body)}`);
      assert.equal(answer.body.reason_code, 'cross_site_request');
    }
    assert.equal(await allowlisted('198.51.100.8'), false);
  });

  it("refuses a cross-site form post with no body (a node's secret rotated)", async () => {
    const node = await control.send('POST', '/api/opensips-nodes', { hostname: 'csrf-node', mi_socket_address: 'udp:127.0.0.1:9' });
    assert.equal(node.status, 201, JSON.stringify(node.body));
    const answer = await post(control.port, `/api/opensips-nodes/${node.body.id}/rotate-secret`, '', {
      origin: 'http://attacker.example',
      'sec-fetch-site': 'cross-site',
      'content-type': 'application/x-www-form-urlencoded',
    });
    assert.equal(answer.status, 403, JSON.stringify(answer.body));
    assert.equal(answer.body.reason_code, 'cross_site_request');
  });

  it('serves the console only to be shown on its own, never framed by another page (a click there would be a change made here)', async () => {
    for (const path of ['/console', '/console/index.html']) {
      const response = await fetch(`${control.url}${path}`);
      assert.equal(response.status, 200, path);
      assert.equal(response.headers.get('x-frame-options'), 'DENY', path);
      assert.equal(response.headers.get('content-security-policy'), "frame-ancestors 'none'", path);
    }
  });

  it("admits the console's own requests and a script's (no browser headers)", async () => {
    const own = await post(control.port, '/api/auth/ips', JSON.stringify({ ip_address: '198.51.100.9' }), {
      origin: `http://127.0.0.1:${control.port}`,
      'sec-fetch-site': 'same-origin',
      'content-type': 'application/json',
    });
    assert.equal(own.status, 201, JSON.stringify(own.body));
    // Behind a proxy the Host may not be the Origin's: Sec-Fetch-Site, when sent, is what is believed.
    const proxied = await post(control.port, '/api/auth/ips', JSON.stringify({ ip_address: '198.51.100.10' }), {
      origin: 'https://console.example',
      'sec-fetch-site': 'same-origin',
    });
    assert.equal(proxied.status, 201, JSON.stringify(proxied.body));
    const script = await post(control.port, '/api/auth/ips', JSON.stringify({ ip_address: '198.51.100.11' }), {});
    assert.equal(script.status, 201, JSON.stringify(script.body));
    for (const ip of ['198.51.100.9', '198.51.100.10', '198.51.100.11']) assert.equal(await allowlisted(ip), true, ip);
  });
});
