/**
 * Open-loop HTTP/1.1 load driver. Requests are scheduled at a fixed rate and
 * latency is measured from the scheduled send time, so a stalled server shows
 * up as latency instead of being hidden by a client that waits (coordinated
 * omission). Keep-alive connections, one request in flight on each, as
 * OpenSIPS workers hold them. Runs as its own process so it does not share an
 * event loop with the server it measures.
 *
 *   node dist/bench/load.js --port 8090 --rate 10000 --seconds 10 --connections 32 --requests FILE.json
 * FILE.json: [[path, body], ...], sent round-robin. A --rate of 0 means closed loop (as fast as answered).
 * Prints one JSON line: { sent, answered, errors, statuses, achievedRate, p50, p99, p999, max, driverCpuSeconds } (latencies in µs).
 */
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { benchArgs } from './bench-args.js';

export interface LoadResult {
  sent: number;
  answered: number;
  errors: number;
  statuses: Record<string, number>;
  achievedRate: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
  /** CPU the driver itself used (user + system), in seconds: it polls without sleeping to send on time, so about a core. */
  driverCpuSeconds: number;
  /** The same figures per path, when the requests use more than one. */
  byPath?: Record<string, { answered: number; p50: number; p99: number; p999: number; max: number }>;
}

interface Connection {
  socket: Socket;
  busy: boolean;
  scheduledAt: number;
  /** Index of the path of the request in flight. */
  pathIndex: number;
  buffer: Buffer;
}

export async function runLoad(options: {
  port: number;
  rate: number;
  seconds: number;
  connections: number;
  requests: [string, string][];
}): Promise<LoadResult> {
  const encoded = options.requests.map(([path, body]) =>
    Buffer.from(
      `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    ),
  );
  const paths = [...new Set(options.requests.map(([path]) => path))];
  const pathOf = Uint8Array.from(options.requests, ([path]) => paths.indexOf(path));
  const capacity = Math.max(1, Math.ceil((options.rate || 200_000) * options.seconds * 1.05));
  const latencies = new Float64Array(capacity);
  const latencyPath = new Uint8Array(capacity);
  let answered = 0;
  let errors = 0;
  let sent = 0;
  const statuses: Record<string, number> = {};
  const queue: number[] = []; // scheduled times waiting for a free connection
  const idle: Connection[] = [];
  let next = 0;
  const closedLoop = options.rate === 0;
  let stopSending = false;

  const send = (connection: Connection, scheduledAt: number): void => {
    connection.busy = true;
    connection.scheduledAt = scheduledAt;
    connection.pathIndex = pathOf[next % encoded.length];
    connection.socket.write(encoded[next++ % encoded.length]);
    sent++;
  };
  const release = (connection: Connection): void => {
    connection.busy = false;
    if (queue.length > 0) send(connection, queue.shift()!);
    else if (closedLoop && !stopSending) send(connection, performance.now());
    else idle.push(connection);
  };
  const onData = (connection: Connection, chunk: Buffer): void => {
    connection.buffer = connection.buffer.length === 0 ? chunk : Buffer.concat([connection.buffer, chunk]);
    for (;;) {
      const buffer = connection.buffer;
      const headerEnd = buffer.indexOf('\r\n\r\n');
      if (headerEnd < 0) return;
      const head = buffer.toString('latin1', 0, headerEnd);
      const status = head.slice(9, 12);
      if (status === '100') {
        connection.buffer = buffer.subarray(headerEnd + 4);
        continue;
      }
      const match = /content-length: *(\d+)/i.exec(head);
      const length = match === null ? 0 : Number(match[1]);
      if (buffer.length < headerEnd + 4 + length) return;
      connection.buffer = buffer.subarray(headerEnd + 4 + length);
      const latency = performance.now() - connection.scheduledAt;
      if (answered < capacity) {
        latencies[answered] = latency;
        latencyPath[answered] = connection.pathIndex;
      }
      answered++;
      statuses[status] = (statuses[status] ?? 0) + 1;
      if (status[0] === '5') errors++;
      release(connection);
    }
  };

  const connections = await Promise.all(
    Array.from(
      { length: options.connections },
      () =>
        new Promise<Connection>((resolve, reject) => {
          const socket = connect(options.port, '127.0.0.1');
          socket.setNoDelay(true);
          const connection: Connection = { socket, busy: false, scheduledAt: 0, pathIndex: 0, buffer: Buffer.alloc(0) };
          socket.on('connect', () => resolve(connection));
          socket.on('data', (chunk: Buffer) => onData(connection, chunk));
          socket.on('error', (error) => {
            errors++;
            reject(error);
          });
        }),
    ),
  );
  idle.push(...connections);

  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const end = started + options.seconds * 1000;
  if (closedLoop) {
    for (const connection of idle.splice(0)) send(connection, performance.now());
    await new Promise((resolve) => setTimeout(resolve, options.seconds * 1000));
    stopSending = true;
  } else {
    const interval = 1000 / options.rate;
    let scheduled = started;
    await new Promise<void>((resolve) => {
      const tick = (): void => {
        const now = performance.now();
        while (scheduled <= now && scheduled < end) {
          const connection = idle.pop();
          if (connection === undefined) queue.push(scheduled);
          else send(connection, scheduled);
          scheduled += interval;
        }
        if (scheduled >= end) resolve();
        else setImmediate(tick);
      };
      tick();
    });
  }
  // Let in-flight requests finish (bounded).
  const drainDeadline = performance.now() + 5000;
  while ((queue.length > 0 || connections.some((connection) => connection.busy)) && performance.now() < drainDeadline) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const elapsed = (Math.min(performance.now(), end + 5000) - started) / 1000;
  for (const connection of connections) connection.socket.destroy();
  errors += queue.length + connections.filter((connection) => connection.busy).length; // never answered

  const measured = Math.min(answered, capacity);
  const cpu = process.cpuUsage(cpuBefore);
  const result: LoadResult = {
    sent,
    answered,
    errors,
    statuses,
    achievedRate: Math.round(answered / Math.max(elapsed, options.seconds)),
    ...percentiles(latencies.slice(0, measured)),
    driverCpuSeconds: Math.round((cpu.user + cpu.system) / 1e4) / 100,
  };
  if (paths.length > 1) {
    result.byPath = {};
    for (let index = 0; index < paths.length; index++) {
      const mine = latencies.slice(0, measured).filter((_, i) => latencyPath[i] === index);
      result.byPath[paths[index]] = { answered: mine.length, ...percentiles(mine) };
    }
  }
  return result;
}

/** p50, p99, p99.9 and max of latencies in ms, as whole µs. */
function percentiles(latencies: Float64Array): { p50: number; p99: number; p999: number; max: number } {
  const samples = latencies.sort();
  const quantile = (q: number): number =>
    samples.length === 0 ? NaN : samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] * 1000;
  return {
    p50: Math.round(quantile(0.5)),
    p99: Math.round(quantile(0.99)),
    p999: Math.round(quantile(0.999)),
    max: Math.round((samples[samples.length - 1] ?? NaN) * 1000),
  };
}

if (process.argv[1]?.endsWith('load.js') === true) {
  const { values } = benchArgs({
    options: {
      port: { type: 'string' },
      rate: { type: 'string', default: '10000' },
      seconds: { type: 'string', default: '10' },
      connections: { type: 'string', default: '32' },
      requests: { type: 'string' },
    },
  });
  const requests = JSON.parse(readFileSync(values.requests!, 'utf8')) as [string, string][];
  runLoad({
    port: Number(values.port),
    rate: Number(values.rate),
    seconds: Number(values.seconds),
    connections: Number(values.connections),
    requests,
  }).then(
    (result) => process.stdout.write(`${JSON.stringify(result)}\n`),
    (error: unknown) => {
      process.stderr.write(`${String(error)}\n`);
      process.exit(1);
    },
  );
}
