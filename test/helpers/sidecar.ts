import type { ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONTROL_MAIN, SIDECAR_MAIN } from '../../src/devkit/paths.js';
import { startService, type ServiceProcess } from '../../src/devkit/service-process.js';

/** A real sidecar (or control plane) process on an ephemeral loopback port. */
export class SidecarProcess {
  private constructor(
    private readonly service: ServiceProcess,
    readonly dataDir: string,
  ) {}

  get child(): ChildProcess {
    return this.service.child;
  }

  get port(): number {
    return this.service.port;
  }

  /** Every line the process wrote so far. */
  get logs(): string[] {
    return this.service.logs;
  }

  /** The first log line, written or to come, that `matches` (see ServiceProcess.waitForLine). */
  waitForLog(matches: (line: string) => boolean, timeoutMs?: number): Promise<string> {
    return this.service.waitForLine(matches, timeoutMs);
  }

  static start(options: { dataDir?: string; args?: string[] } = {}): Promise<SidecarProcess> {
    // A test's admissions may wait on a centre slowed by the whole suite on two cores: past the production
    // deadline (900 ms, sized to OpenSIPS's 1 s) they would be refused and the test flake. A test's own args win.
    return SidecarProcess.spawn(SIDECAR_MAIN, 'sidecar listening', {
      ...options,
      args: ['--admission-deadline-ms', '10000', ...(options.args ?? [])],
    });
  }

  static startControlPlane(options: { dataDir?: string; args?: string[] } = {}): Promise<SidecarProcess> {
    return SidecarProcess.spawn(CONTROL_MAIN, 'control plane listening', options);
  }

  private static async spawn(main: string, ready: string, options: { dataDir?: string; args?: string[] }): Promise<SidecarProcess> {
    const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'service-test-'));
    const service = await startService(
      main,
      ['--port', '0', '--data-dir', dataDir, '--log-level', 'debug', ...(options.args ?? [])],
      ready,
    );
    return new SidecarProcess(service, dataDir);
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
    const response = await fetch(this.url + path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text === '' ? null : JSON.parse(text) };
  }

  async send(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
    const response = await fetch(this.url + path, {
      method,
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text === '' ? null : JSON.parse(text) };
  }

  async get(path: string): Promise<{ status: number; body: any; text: string }> {
    const response = await fetch(this.url + path);
    const text = await response.text();
    let body: unknown = null;
    try {
      body = JSON.parse(text);
    } catch {
      // Prometheus text
    }
    return { status: response.status, body, text };
  }

  async putSnapshot(bytes: Uint8Array, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
    const response = await fetch(`${this.url}/api/snapshot`, {
      method: 'PUT',
      headers: { 'content-type': 'application/msgpack', ...headers },
      body: bytes,
    });
    return { status: response.status, body: await response.json() };
  }

  /** Sends raw bytes on a fresh connection and returns everything the server wrote until it closed or went quiet. */
  raw(payload: string | Buffer, options: { quietMs?: number; destroyAfterWrite?: boolean } = {}): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = connect(this.port, '127.0.0.1');
      let received = '';
      let timer: NodeJS.Timeout | undefined;
      const finish = (): void => {
        clearTimeout(timer);
        socket.destroy();
        resolve(received);
      };
      const arm = (): void => {
        clearTimeout(timer);
        timer = setTimeout(finish, options.quietMs ?? 300);
      };
      socket.on('connect', () => {
        socket.write(payload);
        if (options.destroyAfterWrite === true) finish();
        else arm();
      });
      socket.on('data', (chunk) => {
        received += chunk.toString('latin1');
        arm();
      });
      socket.on('close', finish);
      socket.on('error', (error) => (received === '' ? reject(error) : finish()));
    });
  }

  alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    return new Promise((resolve) => {
      if (!this.alive()) {
        resolve();
        return;
      }
      this.child.once('exit', () => resolve());
      this.child.kill(signal);
    });
  }
}
