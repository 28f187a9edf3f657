import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SidecarProcess } from '../helpers/sidecar.js';

/**
 * GET /metrics under a name rebound to the server's address (DNS rebinding): a page elsewhere, in the browser
 * of an operator (the control plane lets the operator's address scrape) or on a node (the sidecar listens on
 * loopback), is same-origin with the server and could read its metrics. Its requests carry its own name as
 * Host: refused unless the Host is an IP literal, localhost or a listed name. A scrape with the control plane's
 * scrape token is not held to the Host: a rebound page has no token.
 */
const SCRAPE_TOKEN = 'scrape-token-for-rebinding-test';

function scrape(port: number, host: string, authorization?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const sent = request(
      { host: '127.0.0.1', port, path: '/metrics', headers: { host, ...(authorization === undefined ? {} : { authorization }) } },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => resolve({ status: response.statusCode!, text }));
      },
    );
    sent.on('error', reject);
    sent.end();
  });
}

const reasonOf = (text: string): unknown => (JSON.parse(text) as { reason_code: unknown }).reason_code;

describe('GET /metrics on the control plane under a rebound name', () => {
  let control: SidecarProcess;

  before(async () => {
    const tokenFile = join(mkdtempSync(join(tmpdir(), 'metrics-rebinding-')), 'token');
    writeFileSync(tokenFile, SCRAPE_TOKEN);
    control = await SidecarProcess.startControlPlane({
      args: ['--admin-hostnames', 'control.example.test', '--metrics-token-file', tokenFile],
    });
  });

  after(() => control.kill());

  it('refuses an address-admitted scrape under a name not the control plane (421)', async () => {
    for (const host of [`attacker.example:${control.port}`, `control.example.test.attacker.example:${control.port}`]) {
      const answer = await scrape(control.port, host);
      assert.equal(answer.status, 421, `${host}: ${answer.text}`);
      assert.equal(reasonOf(answer.text), 'admin_host_not_allowed');
    }
    assert.match(control.logs.join('\n'), /metrics scrape for a host name not the control plane/);
  });

  it('answers under an IP literal, localhost or a name in --admin-hostnames, and a token scrape under any name', async () => {
    for (const host of [
      `127.0.0.1:${control.port}`,
      `[::1]:${control.port}`,
      `localhost:${control.port}`,
      `control.example.test:${control.port}`,
    ]) {
      const answer = await scrape(control.port, host);
      assert.equal(answer.status, 200, `${host}: ${answer.text}`);
      assert.match(answer.text, /control_plane_store_info/);
    }
    const withToken = await scrape(control.port, 'prometheus-target.example:9100', `Bearer ${SCRAPE_TOKEN}`);
    assert.equal(withToken.status, 200, withToken.text);
  });
});

describe('GET /metrics on a sidecar under a rebound name', () => {
  let sidecar: SidecarProcess;

  before(async () => {
    sidecar = await SidecarProcess.start({ args: ['--metrics-hostnames', 'node-1.example.test'] });
  });

  after(() => sidecar.kill());

  it('refuses a Host that is not the sidecar (421) and answers under an IP literal, localhost or a listed name', async () => {
    const refused = await scrape(sidecar.port, `attacker.example:${sidecar.port}`);
    assert.equal(refused.status, 421, refused.text);
    assert.equal(reasonOf(refused.text), 'metrics_host_not_allowed');
    for (const host of [`127.0.0.1:${sidecar.port}`, `localhost:${sidecar.port}`, `node-1.example.test:${sidecar.port}`]) {
      const answer = await scrape(sidecar.port, host);
      assert.equal(answer.status, 200, `${host}: ${answer.text}`);
      assert.match(answer.text, /sidecar_/);
    }
  });

  it('leaves the call endpoints and health as they were, whatever the Host', async () => {
    const health = await new Promise<number>((resolve, reject) => {
      const sent = request(
        { host: '127.0.0.1', port: sidecar.port, path: '/api/health', headers: { host: 'attacker.example' } },
        (response) => {
          response.resume();
          resolve(response.statusCode!);
        },
      );
      sent.on('error', reject);
      sent.end();
    });
    assert.equal(health, 200);
  });
});
