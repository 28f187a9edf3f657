import Database from 'better-sqlite3';
import { execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { constants, openSync, promises as fs } from 'node:fs';
import { createServer } from 'node:http';
import { Socket, type AddressInfo } from 'node:net';
import { join } from 'node:path';

/**
 * A stand-in for OpenSIPS's Management Interface, speaking its framing on
 * all three transports: mi_http (JSON-RPC over POST, and like OpenSIPS no
 * answer at all without Content-Type: application/json), mi_datagram (UDP),
 * mi_fifo (`:reply_fifo:{json}` lines, answers written to /tmp/reply_fifo).
 * dr_reload loads the drouting tables from the node's SQLite file, as
 * OpenSIPS does, so status commands report what was really written.
 * Dialogs: `dlg_list` with a callid and `dlg_end_dlg` with a dialog_id (the
 * $DLG_did, or a Call-ID) answer as OpenSIPS 3.6's dialog module does,
 * 404 included, for the dialogs a test opens with openDialog().
 */
/** Dialog states as dlg_list prints them (modules/dialog/dlg_hash.h). */
const CONFIRMED = 4;
const DELETED = 5;

export class FakeOpensipsMi {
  readonly calls: { method: string; params: unknown }[] = [];
  reloads = 0;
  addressReloads = 0;
  /** Milliseconds to wait before answering (a slow node). */
  delayMs = 0;
  /** Answer dr_reload with a JSON-RPC error. */
  failReload = false;
  /** Answer this many of the next dlg_end_dlg calls with a JSON-RPC error (a busy OpenSIPS). */
  failDialogEnds = 0;
  private loaded = { gateways: 0, carriers: 0, rules: 0, date: '' };
  /** Dialogs by Call-ID; `endedAt` is when dlg_end_dlg ended one (epoch ms). */
  readonly dialogs = new Map<string, { did: string; state: number; endedAt: number | null }>();
  private readonly closers: (() => void)[] = [];

  /**
   * `droutingDb`: the SQLite file this node reads drouting from, or, for a node on MySQL/PostgreSQL, a
   * function that counts its tables' rows (the devkit does not speak those servers itself).
   */
  constructor(private readonly droutingDb: string | null | (() => Promise<{ gateways: number; carriers: number; rules: number }>)) {}

  private async answer(text: string): Promise<string | null> {
    let request: { method?: unknown; params?: unknown; id?: unknown };
    try {
      request = JSON.parse(text) as typeof request;
    } catch {
      return JSON.stringify({ jsonrpc: '2.0', error: { code: -32700, message: 'Parse error' }, id: null });
    }
    const method = String(request.method);
    this.calls.push({ method, params: request.params });
    if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    if (request.id === undefined) return null; // a notification
    const reply = (result: unknown): string => JSON.stringify({ jsonrpc: '2.0', result, id: request.id });
    const error = (code: number, message: string): string => JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: request.id });
    if (Array.isArray(request.params)) return error(-32602, 'Invalid params');
    switch (method) {
      case 'dr_reload': {
        if (this.failReload) return error(500, 'Failed to reload');
        this.reloads++;
        await this.load();
        return reply('OK');
      }
      case 'address_reload':
        this.addressReloads++;
        return reply('OK');
      case 'dr_reload_status':
        return reply({ Date: this.loaded.date });
      case 'dr_gw_status':
        return reply({ Gateways: Array.from({ length: this.loaded.gateways }, (_, i) => ({ ID: `gw${i}`, State: 'Active' })) });
      case 'dlg_list': {
        const callid = (request.params as { callid?: unknown } | undefined)?.callid;
        const dialog = typeof callid === 'string' ? this.dialogs.get(callid) : undefined;
        if (dialog === undefined || dialog.state === DELETED) return error(404, 'No such dialog');
        return reply({ Dialog: { ID: dialog.did, state: dialog.state, callid } });
      }
      case 'dlg_end_dlg': {
        if (this.failDialogEnds > 0) {
          this.failDialogEnds--;
          return error(500, 'Internal error');
        }
        const id = (request.params as { dialog_id?: unknown } | undefined)?.dialog_id;
        const found = [...this.dialogs].find(([callid, dialog]) => dialog.state !== DELETED && (dialog.did === id || callid === id));
        if (found === undefined) return error(404, 'Requested Dialog not found');
        found[1].state = DELETED;
        found[1].endedAt = Date.now();
        return reply('OK');
      }
      case 'dr_carrier_status':
        return reply({ Carriers: Array.from({ length: this.loaded.carriers }, (_, i) => ({ ID: `cr${i}`, Enabled: 'yes' })) });
      default:
        return error(-32601, 'Method not found');
    }
  }

  private async load(): Promise<void> {
    this.loaded.date = new Date().toUTCString();
    if (this.droutingDb === null) return;
    if (typeof this.droutingDb === 'function') {
      this.loaded = { ...(await this.droutingDb()), date: this.loaded.date };
      return;
    }
    const db = new Database(this.droutingDb, { readonly: true });
    const count = (table: string): number => (db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
    this.loaded = { gateways: count('dr_gateways'), carriers: count('dr_carriers'), rules: count('dr_rules'), date: this.loaded.date };
    db.close();
  }

  /** A confirmed dialog (state 4), as create_dialog and a 200 OK leave it. */
  openDialog(callId: string, did: string): void {
    this.dialogs.set(callId, { did, state: CONFIRMED, endedAt: null });
  }

  /** The caller hung up: OpenSIPS no longer lists the dialog. */
  hangUp(callId: string): void {
    const dialog = this.dialogs.get(callId);
    if (dialog !== undefined) dialog.state = DELETED;
  }

  get loadedRules(): number {
    return this.loaded.rules;
  }

  async startHttp(): Promise<string> {
    const server = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        if (request.url !== '/mi' || request.headers['content-type'] !== 'application/json') return; // OpenSIPS: "empty request", no answer
        void this.answer(body).then((reply) => {
          response.writeHead(200, { 'content-type': 'application/json' });
          response.end(reply ?? '');
        });
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.closers.push(() => server.close());
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/mi`;
  }

  async startUdp(): Promise<string> {
    const socket = createSocket('udp4');
    let open = true;
    socket.on('message', (message, peer) => {
      void this.answer(message.toString()).then((reply) => {
        if (reply !== null && open) socket.send(reply, peer.port, peer.address); // a slow answer may come after close
      });
    });
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    this.closers.push(() => {
      open = false;
      socket.close();
    });
    return `udp:127.0.0.1:${socket.address().port}`;
  }

  startFifo(path: string): string {
    execFileSync('mkfifo', ['-m', '0600', path]);
    const reader = new Socket({ fd: openSync(path, constants.O_RDWR | constants.O_NONBLOCK), readable: true, writable: false });
    let buffered = '';
    reader.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        const match = /^:([^:]+):(.*)$/.exec(line);
        if (match === null) continue;
        const [, replyName, json] = match;
        void this.answer(json).then(async (reply) => {
          if (reply === null) return;
          try {
            const handle = await fs.open(join('/tmp', replyName), constants.O_WRONLY | constants.O_NONBLOCK);
            await handle.write(reply);
            await handle.close();
          } catch {
            // The client gave up and removed its reply FIFO: OpenSIPS drops the reply too.
          }
        });
      }
    });
    this.closers.push(() => {
      reader.destroy();
      void fs.unlink(path).catch(() => undefined);
    });
    return path;
  }

  close(): void {
    for (const close of this.closers) close();
  }
}
