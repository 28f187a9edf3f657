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

/** A JSON answer parsed; a page (the console's) as its text. */
function jsonOrText(text: string): any {
  if (text === '') return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** A request with exactly the headers given (a POST as a browser sends a Blob body: no Content-Type); Host among them if given. */
function ask(port: number, method: string, path: string, body: string, headers: Record<string, string>): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const sent = request(
      { host: '127.0.0.1', port, path, method, headers: { ...headers, 'content-length': Buffer.byteLength(body) } },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => resolve({ status: response.statusCode!, body: jsonOrText(text) }));
      },
    );
    sent.on('error', reject);
    sent.end(body);
  });
}

const post = (port: number, path: string, body: string, headers: Record<string, string>): Promise<Answer> =>
  ask(port, 'POST', path, body, headers);

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

/**
 * DNS rebinding: a page on attacker.example whose name is made to resolve to the control plane's address is
 * same-origin with it in the operator's browser (Sec-Fetch-Site same-origin, Origin its own Host), so the check
 * above lets it through, and it could read as well as change. Its requests carry its own name as Host: an
 * operator's request is answered only under an IP literal, localhost or a name the operator listed.
 */
describe('admin API requests under a name rebound to the control plane', () => {
  let control: SidecarProcess;

  before(async () => {
    control = await SidecarProcess.startControlPlane({ args: ['--admin-hostnames', 'control.example.test,Ops.Example.Test'] });
  });

  after(async () => {
    await control.kill();
  });

  /** What a page served under `host` has its browser send: that Host, and its own origin (same-origin by now). */
  const fromPage = (host: string): Record<string, string> => ({
    host,
    origin: `http://${host}`,
    'sec-fetch-site': 'same-origin',
    'content-type': 'application/json',
  });
  const allowlisted = async (ip: string): Promise<boolean> =>
    ((await control.get('/api/auth/ips')).body as { ip_address: string }[]).some((row) => row.ip_address === ip);

  it('refuses a rebound page its reads and its changes (421) and changes nothing', async () => {
    const host = `attacker.example:${control.port}`;
    for (const [method, path, body] of [
      ['GET', '/api/auth/ips', ''],
      ['GET', '/api/customer-accounts', ''],
      ['GET', '/console', ''],
      ['POST', '/api/auth/ips', JSON.stringify({ ip_address: '198.51.100.20' })],
    ] as const) {
      const answer = await ask(control.port, method, path, body, fromPage(host));
      assert.equal(answer.status, 421, `${method} ${path}: ${JSON.stringify(answer.body)}`);
      assert.equal(answer.body.reason_code, 'admin_host_not_allowed', `${method} ${path}`);
    }
    assert.equal(await allowlisted('198.51.100.20'), false);
    assert.match(control.logs.join('\n'), /operator request for a host name not the control plane/);
  });

  it('refuses a name that only looks like the control plane', async () => {
    for (const host of [
      'control.example.test.attacker.example',
      `sub.control.example.test:${control.port}`,
      `127.0.0.1.attacker.example:${control.port}`,
      `localhost.attacker.example:${control.port}`,
      `127.0.0.1:${control.port}:${control.port}`,
    ]) {
      const answer = await ask(control.port, 'GET', '/api/auth/ips', '', { host });
      assert.equal(answer.status, 421, `${host}: ${JSON.stringify(answer.body)}`);
      assert.equal(answer.body.reason_code, 'admin_host_not_allowed', host);
    }
  });

  it('answers the operator under an IP literal, localhost or a listed name, with or without a port', async () => {
    const hosts = [
      `127.0.0.1:${control.port}`,
      '127.0.0.1',
      `[::1]:${control.port}`,
      `localhost:${control.port}`,
      'LOCALHOST',
      `control.example.test:${control.port}`,
      'ops.example.test.',
    ];
    for (const [i, host] of hosts.entries()) {
      const read = await ask(control.port, 'GET', '/api/auth/ips', '', fromPage(host));
      assert.equal(read.status, 200, `${host}: ${JSON.stringify(read.body)}`);
      const write = await ask(
        control.port,
        'POST',
        '/api/auth/ips',
        JSON.stringify({ ip_address: `198.51.100.${30 + i}` }),
        fromPage(host),
      );
      assert.equal(write.status, 201, `${host}: ${JSON.stringify(write.body)}`);
    }
    const page = await ask(control.port, 'GET', '/console', '', { host: `control.example.test:${control.port}` });
    assert.equal(page.status, 200);
  });

  it("leaves portal sessions, the nodes' routes and health to their own credentials, whatever the Host", async () => {
    const host = { host: 'portal.example', 'content-type': 'application/json' };
    const account = await control.send('POST', '/api/customer-accounts', {
      name: 'Rebind Pty',
      currency: 'AUD',
      username: 'rebind',
      password: 'rebind-secret-1',
    });
    assert.equal(account.status, 201, JSON.stringify(account.body));
    const login = await ask(
      control.port,
      'POST',
      '/api/auth/login',
      JSON.stringify({ username: 'rebind', password: 'rebind-secret-1' }),
      host,
    );
    assert.equal(login.status, 200, JSON.stringify(login.body));
    // A customer's portal may sit behind a proxy under its own name: its token, no page elsewhere has it, is what counts.
    const own = await ask(control.port, 'GET', `/api/customer-accounts/${account.body.id}`, '', {
      ...host,
      authorization: `Bearer ${login.body.token}`,
    });
    assert.equal(own.status, 200, JSON.stringify(own.body));
    const round = await ask(
      control.port,
      'POST',
      '/api/ledger/node-sync',
      JSON.stringify({ node: 'node-1', seq: 1, settlements: [], leases: [] }),
      host,
    );
    // The money round's own answer (no such node), not the Host's.
    assert.equal(round.status, 404, JSON.stringify(round.body));
    assert.equal(round.body.reason_code, 'unknown_node');
    assert.equal((await ask(control.port, 'GET', '/api/health', '', host)).status, 200);
  });
});
