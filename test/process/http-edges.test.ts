import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { routingSnapshotBytes } from '../fixtures/routing.js';
import { SidecarProcess } from '../helpers/sidecar.js';

/**
 * The HTTP server's edges over raw TCP against real processes: who is refused before a body is read, what a
 * declared length may cost, the process-wide body budget, malformed framing and media types.
 */

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: any;
}

/**
 * A connection that sends `head` (and `body`, if any) and parses the one response the server writes; the socket
 * stays open for more body bytes until `close()`. `answer` rejects when the server closes without answering.
 */
class RawExchange {
  readonly socket: Socket;
  readonly answer: Promise<RawResponse>;

  constructor(port: number, head: string, body: Buffer = Buffer.alloc(0), localAddress?: string) {
    this.socket = connect({ port, host: '127.0.0.1', localAddress });
    let received = Buffer.alloc(0);
    this.answer = new Promise((resolve, reject) => {
      const parse = (): RawResponse | null => {
        const end = received.indexOf('\r\n\r\n');
        if (end < 0) return null;
        const lines = received.subarray(0, end).toString('latin1').split('\r\n');
        const headers: Record<string, string> = {};
        for (const line of lines.slice(1)) {
          const colon = line.indexOf(':');
          headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
        }
        const length = Number(headers['content-length'] ?? 0);
        if (received.length < end + 4 + length) return null;
        const text = received.subarray(end + 4, end + 4 + length).toString();
        return { status: Number(lines[0].split(' ')[1]), headers, body: text === '' ? null : JSON.parse(text) };
      };
      this.socket.on('data', (chunk: Buffer) => {
        received = Buffer.concat([received, chunk]);
        const response = parse();
        if (response !== null) resolve(response);
      });
      this.socket.on('close', () => reject(new Error(`closed without an answer (got ${JSON.stringify(received.toString('latin1'))})`)));
      this.socket.on('error', () => undefined); // a reset shows as close
    });
    void this.answer.catch(() => undefined);
    this.socket.write(Buffer.concat([Buffer.from(head), body]));
  }

  /** Resolves once the socket has written everything so far. */
  send(bytes: Buffer): Promise<void> {
    return new Promise((resolve) => this.socket.write(bytes, () => resolve()));
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Whether the server closed the connection without answering (uWS's own refusals). */
function closedUnanswered(port: number, raw: string): Promise<boolean> {
  return new RawExchange(port, raw).answer.then(
    () => false,
    () => true,
  );
}

/** A request head as a script sends it; its Host names the control plane, as an operator's must (421 else). */
function head(method: string, path: string, headers: Record<string, string | number>): string {
  return `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('')}\r\n`;
}

async function bodyBytesHeld(sidecar: SidecarProcess): Promise<number> {
  const match = /^sidecar_http_body_bytes_held (\d+)$/m.exec((await sidecar.get('/metrics')).text);
  assert.ok(match, 'the metrics page has sidecar_http_body_bytes_held');
  return Number(match[1]);
}

/** Polls the gauge until `done` holds: waiting on what the process reports, not on time. */
async function untilHeld(sidecar: SidecarProcess, done: (bytes: number) => boolean): Promise<number> {
  for (;;) {
    const held = await bodyBytesHeld(sidecar);
    if (done(held)) return held;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Virtual and resident size of a process, in bytes (Linux). */
function memoryOf(pid: number): { virtual: number; resident: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)![1]) * 1024;
  return { virtual: kb('VmSize'), resident: kb('VmRSS') };
}

const MiB = 1024 * 1024;

describe('HTTP edges: the control plane', () => {
  let control: SidecarProcess;
  before(async () => {
    control = await SidecarProcess.startControlPlane();
  });
  after(async () => {
    await control.kill();
  });

  it('answers 403 to an address outside auth_ips from the headers alone, before any body byte is sent', async () => {
    // 127.0.0.2 is loopback but not in auth_ips (only 127.0.0.1 is seeded). No body is ever sent: the answer can
    // only come from the headers. Before, the server waited for the declared bytes and then answered.
    const sheet = new RawExchange(
      control.port,
      head('POST', '/api/rate-decks/1/rates/bulk', { 'Content-Type': 'application/json', 'Content-Length': 100 * MiB }),
      undefined,
      '127.0.0.2',
    );
    const refused = await sheet.answer;
    sheet.close();
    assert.equal(refused.status, 403);
    assert.equal(refused.body.reason_code, 'address_not_allowed');
    assert.equal(refused.headers.connection, 'close');
    // The same request from an allowed address is not refused at the headers: it waits for its body.
    const allowed = new RawExchange(
      control.port,
      head('POST', '/api/rate-decks', { 'Content-Type': 'application/json', 'Content-Length': 2 }),
    );
    await allowed.send(Buffer.from('{}'));
    assert.equal((await allowed.answer).body.reason_code, 'invalid_field');
    allowed.close();
  });

  it('keeps reading a keep-alive connection after an admitted request whose body came with its headers', async () => {
    // Admission pauses reading while auth_ips is consulted; a guard that the connection is resumed afterwards.
    const one = JSON.stringify({ name: 'Keep', deck_type: 'carrier', currency: 'AUD' });
    const two = JSON.stringify({ name: 'Alive', deck_type: 'carrier', currency: 'AUD' });
    const exchange = new RawExchange(
      control.port,
      head('POST', '/api/rate-decks', { 'Content-Type': 'application/json', 'Content-Length': one.length }),
      Buffer.from(one),
    );
    assert.equal((await exchange.answer).status, 201);
    const answered = new Promise<string>((resolve) => exchange.socket.on('data', (chunk: Buffer) => resolve(chunk.toString('latin1'))));
    await exchange.send(
      Buffer.from(head('POST', '/api/rate-decks', { 'Content-Type': 'application/json', 'Content-Length': two.length }) + two),
    );
    assert.match(await answered, /^HTTP\/1\.1 201 /);
    exchange.close();
  });

  it('reserves nothing for 20 rate sheet uploads declaring 256 MB each, and answers 413 just over the limit', async () => {
    const before = memoryOf(control.child.pid!);
    const path = '/api/rate-decks/1/rates/bulk'; // the control plane's largest limit: 256 MiB
    const uploads = Array.from(
      { length: 20 },
      () =>
        new RawExchange(
          control.port,
          head('POST', path, { 'Content-Type': 'application/json', 'Content-Length': 268435455 }),
          Buffer.from('['),
        ),
    );
    await Promise.all(uploads.map((upload) => upload.send(Buffer.alloc(0))));
    // Answered after the 20 uploads' headers and first bytes were taken in (they were on the wire first).
    assert.equal((await control.get('/api/health')).status, 200);
    const during = memoryOf(control.child.pid!);
    // Before: 20 x 256 MB of address space at header time.
    assert.ok(during.virtual - before.virtual < 256 * MiB, `virtual size grew by ${during.virtual - before.virtual} bytes`);
    for (const upload of uploads) upload.close();
    const over = new RawExchange(control.port, head('POST', path, { 'Content-Type': 'application/json', 'Content-Length': 268435457 }));
    const answer = await over.answer;
    over.close();
    assert.equal(answer.status, 413);
    assert.equal(answer.body.reason_code, 'body_too_large');
    assert.ok(control.alive());
  });
});

describe('HTTP edges: the sidecar', () => {
  let sidecar: SidecarProcess;
  let tight: SidecarProcess;
  before(async () => {
    sidecar = await SidecarProcess.start();
    // A body budget of 1 MiB, to reach it with small uploads.
    tight = await SidecarProcess.start({ args: ['--max-inflight-body-bytes', String(MiB)] });
    assert.equal((await sidecar.putSnapshot(routingSnapshotBytes(1))).status, 200);
  });
  after(async () => {
    await Promise.all([sidecar.kill(), tight.kill()]);
  });

  it('holds only what arrived for 20 uploads declaring 900 MB each, and gives it back when they disconnect', async () => {
    const before = memoryOf(sidecar.child.pid!);
    const declared = 943718400; // under the 1 GiB snapshot limit: accepted, so it is read
    const uploads = Array.from(
      { length: 20 },
      () =>
        new RawExchange(
          sidecar.port,
          head('PUT', '/api/snapshot', { 'Content-Type': 'application/msgpack', 'Content-Length': declared }),
          Buffer.alloc(1024, 0x80),
        ),
    );
    await Promise.all(uploads.map((upload) => upload.send(Buffer.alloc(0))));
    // Answered after the 20 uploads' headers and first bytes were taken in (they were on the wire first).
    assert.equal((await sidecar.get('/api/health')).status, 200);
    const during = memoryOf(sidecar.child.pid!);
    // Before: 20 x 900 MB of address space at header time.
    assert.ok(during.virtual - before.virtual < 256 * MiB, `virtual size grew by ${during.virtual - before.virtual} bytes`);
    assert.ok(during.resident - before.resident < 64 * MiB, `resident size grew by ${during.resident - before.resident} bytes`);
    // Each holds its first buffer (64 KiB), not its declared size.
    await untilHeld(sidecar, (held) => held === 20 * 64 * 1024);
    for (const upload of uploads) upload.close();
    await untilHeld(sidecar, (held) => held === 0);
    assert.ok(sidecar.alive());
  });

  it('answers 503 server_busy with Retry-After when bodies being read would pass the budget', async () => {
    // One upload holds 900 000 of the 1 MiB budget (its buffer grows to its declared size)...
    const first = new RawExchange(tight.port, head('PUT', '/api/snapshot', { 'Content-Length': 900_000 }), Buffer.alloc(800_000, 0x80));
    await untilHeld(tight, (held) => held === 900_000);
    // ...so a second one's buffer cannot grow past 128 KiB.
    const second = new RawExchange(tight.port, head('PUT', '/api/snapshot', { 'Content-Length': 300_000 }), Buffer.alloc(300_000, 0x80));
    const busy = await second.answer;
    second.close();
    assert.equal(busy.status, 503);
    assert.equal(busy.body.reason_code, 'server_busy');
    assert.equal(busy.headers['retry-after'], '1');
    // The first finishes and is answered on its merits (not a snapshot), and the budget is free again.
    await first.send(Buffer.alloc(100_000, 0x80));
    assert.equal((await first.answer).body.reason_code, 'snapshot_malformed');
    first.close();
    await untilHeld(tight, (held) => held === 0);
    const after = new RawExchange(tight.port, head('PUT', '/api/snapshot', { 'Content-Length': 300_000 }), Buffer.alloc(300_000, 0x80));
    assert.equal((await after.answer).body.reason_code, 'snapshot_malformed');
    after.close();
  });

  it('refuses conflicting Content-Length headers with 400 invalid_content_length, and takes equal ones', async () => {
    const body = JSON.stringify({ customer_trunk_id: 10, dnis: '61400123456' });
    const conflicting = new RawExchange(
      sidecar.port,
      `POST /api/lcr/lookup HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nContent-Length: ${body.length + 7}\r\n\r\n`,
      Buffer.from(body),
    );
    const refused = await conflicting.answer;
    conflicting.close();
    assert.equal(refused.status, 400);
    assert.equal(refused.body.reason_code, 'invalid_content_length');
    const repeated = new RawExchange(
      sidecar.port,
      `POST /api/lcr/lookup HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nContent-Length: ${body.length}\r\n\r\n`,
      Buffer.from(body),
    );
    assert.equal((await repeated.answer).status, 200);
    repeated.close();
  });

  it('takes application/json with parameters and refuses application/jsonx with 415', async () => {
    const body = Buffer.from(JSON.stringify({ customer_trunk_id: 10, dnis: '61400123456' }));
    const ask = async (type: string): Promise<RawResponse> => {
      const exchange = new RawExchange(
        sidecar.port,
        head('POST', '/api/lcr/lookup', { 'Content-Type': type, 'Content-Length': body.length }),
        body,
      );
      const answer = await exchange.answer;
      exchange.close();
      return answer;
    };
    assert.equal((await ask('application/json; charset=utf-8')).status, 200);
    assert.equal((await ask('Application/JSON')).status, 200);
    const jsonx = await ask('application/jsonx');
    assert.equal(jsonx.status, 415);
    assert.equal(jsonx.body.reason_code, 'unsupported_media_type');
    assert.equal((await ask('application/json-seq')).status, 415);
  });

  it('does not store per-minute counters for trunk ids the snapshot does not know', async () => {
    for (let id = 500_000; id < 500_100; id++) {
      const answer = await sidecar.post('/api/metrics/per-minute/check', { trunk_id: id, limit: 5 });
      assert.deepEqual(answer.body, { allowed: true, current: 0, limit: 5 });
    }
    assert.equal((await sidecar.post('/api/metrics/per-minute/check', { trunk_id: 12, limit: 5 })).body.current, 1);
    const listed = (await sidecar.get('/api/metrics/per-minute')).body as { trunk_id: number }[];
    assert.deepEqual(
      listed.map((entry) => entry.trunk_id),
      [12],
    );
  });

  // What uWS refuses before the process sees the request: it closes the connection at once without an answer
  // (we cannot answer these; docs/operations.md, HTTP edges). Pinned so that a uWS upgrade that changes it shows.
  // (A request line that never ends, HTTP/1.0 without Host and HTTP/0.9 are held until uWS's idle timeout
  // instead, about 10 s: documented, not tested here for the time it takes.)
  it('leaves unknown or lower-case methods and bad or 10-digit lengths to uWS, which closes unanswered', async () => {
    assert.equal(await closedUnanswered(sidecar.port, 'BREW /api/health HTTP/1.1\r\nHost: test\r\n\r\n'), true);
    assert.equal(await closedUnanswered(sidecar.port, 'get /api/health HTTP/1.1\r\nHost: test\r\n\r\n'), true);
    assert.equal(await closedUnanswered(sidecar.port, head('PUT', '/api/snapshot', { 'Content-Length': '1073741824' })), true);
    assert.equal(await closedUnanswered(sidecar.port, head('PUT', '/api/snapshot', { 'Content-Length': 'abc' })), true);
    assert.equal((await sidecar.get('/api/health')).status, 200);
  });
});
