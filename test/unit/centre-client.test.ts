import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { BODY_PIECE_BYTES, CentreClient } from '../../src/sidecar/centre/client.js';
import { RoundBody } from '../../src/sidecar/centre/round-body.js';
import { settlementText } from '../../src/sidecar/journal/rated-cdr.js';
import { ANSWERED_CDR } from '../fixtures/settlement.js';

/** The node's HTTP client for money rounds, against a real server on loopback. */
describe('centre client', () => {
  let server: Server;
  let base: string;
  let connections = 0;
  const bodies: string[] = [];
  let handle: (request: IncomingMessage, response: ServerResponse, body: string) => void = () => undefined;

  before(async () => {
    server = createServer((request, response) => {
      let body = '';
      request.setEncoding('utf8');
      request.on('data', (chunk: string) => (body += chunk));
      request.on('end', () => {
        bodies.push(`${request.method} ${request.url} ${request.headers['content-type']} ${body}`);
        handle(request, response, body);
      });
    });
    server.on('connection', () => connections++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => server.close());

  it('posts JSON and gives back the status and body, over one kept-alive connection', async () => {
    handle = (_request, response, body) =>
      response.writeHead(body === '{"n":3}' ? 409 : 200, { 'content-type': 'application/json' }).end(`{"echo":${body}}`);
    const client = new CentreClient(base, 2000);
    const before = connections;
    bodies.length = 0;
    const replies = [];
    for (const n of [1, 2, 3]) replies.push(await client.post('/api/ledger/node-sync', `{"n":${n}}`));
    assert.deepEqual(replies, [
      { status: 200, text: '{"echo":{"n":1}}' },
      { status: 200, text: '{"echo":{"n":2}}' },
      { status: 409, text: '{"echo":{"n":3}}' },
    ]);
    assert.deepEqual(bodies, [
      'POST /api/ledger/node-sync application/json {"n":1}',
      'POST /api/ledger/node-sync application/json {"n":2}',
      'POST /api/ledger/node-sync application/json {"n":3}',
    ]);
    assert.equal(connections - before, 1);
    client.close();
  });

  it("posts a money round's body written as bytes: the settlements spliced in as they were journalled, beyond ASCII too", async () => {
    handle = (_request, response) => response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    const client = new CentreClient(base, 2000);
    const builder = new RoundBody();
    // Two hundred CDRs (past the builder's first buffer), whose Call-IDs need escaping and are not ASCII.
    const settlements = Array.from({ length: 200 }, (_, i) => ({
      settlementJson: settlementText({ ...ANSWERED_CDR, id: i + 1, sipCallId: `${ANSWERED_CDR.sipCallId}-é-${i}` }),
    }));
    const head = { node: 'nöde', seq: 7, leases: [{ entity_type: 'customer', entity_id: 1 }] };
    const expected = JSON.stringify({ ...head, settlements: settlements.map((entry) => JSON.parse(entry.settlementJson) as unknown) });
    bodies.length = 0;
    const body = builder.write(head, settlements);
    await client.post('/api/ledger/node-sync', body);
    assert.deepEqual(bodies, [`POST /api/ledger/node-sync application/json ${expected}`]);
    // The next round's body is built in the same place: the one handed to a request stays as it was.
    builder.write({ node: 'n', seq: 8, leases: [] }, []);
    assert.equal(body.toString('utf8'), expected);
    client.close();
  });

  it('writes a large body a piece per event-loop turn, so requests waiting meanwhile are served between pieces', async () => {
    // The request ends at the server only once every piece has been written: count the turns the loop made by then.
    let turns = 0;
    let turnsAtEnd = -1;
    handle = (_request, response) => {
      turnsAtEnd = turns;
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    };
    const client = new CentreClient(base, 2000);
    const pieces = 6;
    // Multi-byte characters across the pieces' boundaries: the bytes are split, the body arrives whole.
    const text = JSON.stringify({ pad: 'é'.repeat((pieces * BODY_PIECE_BYTES) / 2 - 8) });
    const body = Buffer.from(text);
    assert.ok(body.length > (pieces - 1) * BODY_PIECE_BYTES);
    let counting = true;
    const count = (): void => {
      turns++;
      if (counting) setImmediate(count);
    };
    setImmediate(count);
    bodies.length = 0;
    const reply = await client.post('/api/ledger/node-sync', body);
    counting = false;
    assert.equal(reply.status, 200);
    assert.deepEqual(bodies, [`POST /api/ledger/node-sync application/json ${text}`]);
    // One piece a turn: the other work (here, the counter) ran between every two of them.
    assert.ok(turnsAtEnd >= pieces - 1, `${turnsAtEnd} turns while ${pieces} pieces were written`);
    client.close();
  });

  it('gives up on a control plane that does not answer, after its timeout', async () => {
    handle = () => undefined; // never answers
    const client = new CentreClient(base, 200);
    const started = performance.now();
    await assert.rejects(client.post('/api/ledger/node-sync', '{}'), /within 200 ms/);
    assert.ok(performance.now() - started < 2000);
    client.close();
  });

  it('refuses a reply cut short', async () => {
    handle = (_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
      response.write('{"settled":');
      setTimeout(() => response.destroy(), 20);
    };
    const client = new CentreClient(base, 2000);
    await assert.rejects(client.post('/api/ledger/node-sync', '{}'));
    client.close();
  });

  it('rejects at once when nothing listens', async () => {
    const client = new CentreClient('http://127.0.0.1:9', 2000);
    await assert.rejects(client.post('/api/ledger/node-sync', '{}'), /ECONNREFUSED/);
    client.close();
  });

  it('sends a request that could not connect to the next control plane at once, and stays there', async () => {
    handle = (request, response) =>
      response.writeHead(request.url === '/stopping' ? 503 : 200, { 'content-type': 'application/json' }).end('{"from":"second"}');
    const dead = 'http://127.0.0.1:9';
    const client = new CentreClient([dead, base], 2000);
    assert.equal(client.base, dead);
    assert.deepEqual(await client.post('/api/ledger/node-sync', '{}'), { status: 200, text: '{"from":"second"}' });
    assert.equal(client.base, base);
    assert.deepEqual(await client.get('/api/nodes/deltas'), { status: 200, text: '{"from":"second"}' });
    assert.equal(client.base, base, 'a centre that answers is kept');
    // 503 from the second (it is stopping): its answer is given back, and the next request tries the first again.
    assert.equal((await client.post('/stopping', '{}')).status, 503);
    assert.equal(client.base, dead);
    // Every centre down: the last failure, once each was tried.
    const none = new CentreClient([dead, 'http://127.0.0.1:7'], 2000);
    await assert.rejects(none.post('/api/ledger/node-sync', '{}'), /ECONNREFUSED/);
    none.close();
    client.close();
  });

  it('moves on from a control plane that answers 500 (it lost its store): the next request goes to the next one', async () => {
    handle = (request, response) =>
      response.writeHead(request.url === '/store-gone' ? 500 : 200, { 'content-type': 'application/json' }).end('{"from":"first"}');
    const client = new CentreClient([base, 'http://127.0.0.1:9'], 2000);
    const seen = bodies.length;
    assert.equal((await client.post('/store-gone', '{"seq":7}')).status, 500, 'its answer is given back');
    assert.equal(bodies.length - seen, 1, 'sent once: the caller retries it as after a lost reply');
    assert.equal(client.base, 'http://127.0.0.1:9');
    client.close();
  });

  it('does not send a request the centre may have taken to another one: only the next request goes there', async () => {
    handle = (_request, response) => response.destroy(); // took the request, then failed
    const client = new CentreClient([base, 'http://127.0.0.1:9'], 2000);
    const seen = bodies.length;
    await assert.rejects(client.post('/api/ledger/node-sync', '{"seq":7}'), /socket hang up|ECONNRESET/);
    assert.equal(bodies.length - seen, 1, 'sent once');
    assert.equal(client.base, 'http://127.0.0.1:9');
    client.close();
  });

  it('stays with its control plane when the caller abandons a request', async () => {
    handle = () => undefined; // never answers
    const client = new CentreClient([base, 'http://127.0.0.1:9'], 2000);
    const abandon = new AbortController();
    const asked = client.get('/api/nodes/deltas', abandon.signal);
    setTimeout(() => abandon.abort(), 50);
    await assert.rejects(asked);
    assert.equal(client.base, base);
    client.close();
  });
});
