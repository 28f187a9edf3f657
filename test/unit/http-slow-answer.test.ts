import assert from 'node:assert/strict';
import { request as httpRequest, Agent } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startServer, type RunningServer } from '../../src/core/http/server.js';

/**
 * A request admitted asynchronously (the admin API's IP allowlist, a portal session) whose handler takes
 * longer than uWS's 10 s idle timeout, as a sync of the wholesale world does (15–20 s): it is answered, on a
 * connection that then serves the next request. uWS's resume() arms that timeout; resumed once the whole
 * request had arrived, the socket was closed at ~12 s with no reply (curl: "Empty reply from server").
 * The wait is the behaviour under test (it must exceed uWS's timeout, 10 s checked every 4 s), not a
 * timing target.
 */
const SLOW_MS = 13_000;

describe('a slow answer after an asynchronous admission', { timeout: 60_000 }, () => {
  let server: RunningServer;
  before(async () => {
    const admit = () => Promise.resolve(null);
    server = await startServer({
      host: '127.0.0.1',
      port: 0,
      remoteAddress: true,
      routes: [
        {
          method: 'POST',
          path: '/slow',
          maxBodyBytes: 1024,
          admit,
          handler: async () => {
            await sleep(SLOW_MS);
            return { status: 200, body: '{"done":true}' };
          },
        },
        { method: 'POST', path: '/fast', maxBodyBytes: 1024, admit, handler: () => ({ status: 200, body: '{"fast":true}' }) },
      ],
    });
  });
  after(() => server.close());

  it('is answered, with and without a body, and the connection then serves the next request', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const post = (path: string, body: string): Promise<{ status: number; text: string; socket: unknown }> =>
      new Promise((resolve, reject) => {
        const req = httpRequest(
          { host: '127.0.0.1', port: server.port, path, method: 'POST', agent, headers: { 'content-type': 'application/json' } },
          (response) => {
            let text = '';
            response.on('data', (chunk: Buffer) => (text += chunk.toString()));
            response.on('end', () => resolve({ status: response.statusCode ?? 0, text, socket: req.socket }));
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    try {
      const [bodyless, withBody] = await Promise.all([
        post('/slow', ''),
        new Promise<Awaited<ReturnType<typeof post>>>((resolve, reject) => {
          // A second connection: a request whose small body arrives with its headers, before it is admitted.
          const other = new Agent({ keepAlive: false });
          const req = httpRequest(
            {
              host: '127.0.0.1',
              port: server.port,
              path: '/slow',
              method: 'POST',
              agent: other,
              headers: { 'content-type': 'application/json' },
            },
            (response) => {
              let text = '';
              response.on('data', (chunk: Buffer) => (text += chunk.toString()));
              response.on('end', () => resolve({ status: response.statusCode ?? 0, text, socket: req.socket }));
            },
          );
          req.on('error', reject);
          req.end('{"a":1}');
        }),
      ]);
      assert.deepEqual([bodyless.status, bodyless.text], [200, '{"done":true}']);
      assert.deepEqual([withBody.status, withBody.text], [200, '{"done":true}']);
      const next = await post('/fast', '{}');
      assert.deepEqual([next.status, next.text], [200, '{"fast":true}']);
      assert.equal(next.socket, bodyless.socket, 'the same keep-alive connection');
    } finally {
      agent.destroy();
    }
  });
});
