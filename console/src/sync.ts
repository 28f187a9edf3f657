import { api } from './api.js';
import { badge, el, table } from './dom.js';
import { timeElement } from './format.js';

/** What GET /api/console/syncs answers (sync/distribution/sync-history.ts). */
interface NodeResult {
  node_id: number;
  hostname: string;
  success: boolean;
  version?: number | null;
  skipped?: boolean;
  duration_ms: number;
  error: string | null;
}
interface SyncRecord {
  started_at: string;
  finished_at: string;
  duration_ms: number;
  forced: boolean;
  report: { snapshot_version: number; warnings: string[]; sidecar_results: NodeResult[]; reload_results: NodeResult[] } | null;
  error: string | null;
}
interface Syncs {
  running: { started_at: string; forced: boolean; phase: string } | null;
  data: SyncRecord[];
}

/** What GET /api/opensips/deltas answers (sync/deltas/routes.ts): the live changes and how far each node has applied them. */
interface LiveChanges {
  last_seq: number;
  oldest_seq: number | null;
  recent: { seq: number; committed_at: string; table: string; op: 'upsert' | 'delete'; id: number }[];
  nodes: {
    hostname: string;
    applied_seq: number | null;
    lag: number | null;
    seen_at: string | null;
    waiting: boolean;
    snapshot_required: boolean;
  }[];
}

/**
 * A following node always has an ask held at the centre but for a moment between asks (at most 8 s each): one
 * not waiting and not heard from for longer is not following, whatever it last applied.
 */
const SILENT_AFTER_MS = 10_000;

function channelCell(node: LiveChanges['nodes'][number]): Node {
  if (node.snapshot_required) return badge('needs a snapshot', 'bad');
  if (node.waiting) return document.createTextNode('connected, waiting for the next change');
  if (node.seen_at !== null && Date.now() - Date.parse(node.seen_at) > SILENT_AFTER_MS) return badge('silent', 'bad');
  return document.createTextNode(node.seen_at === null ? '—' : 'between asks');
}

/** Live changes travel between syncs (issue 18): per node what it has applied, and the newest changes. */
function renderLiveChanges(target: HTMLElement, live: LiveChanges): void {
  const nodes = table(
    `Live changes: the centre is at #${live.last_seq}`,
    ['Node', 'Applied', 'Behind', 'Last asked', 'Channel'],
    live.nodes.map((node) => [
      el('strong', {}, node.hostname),
      document.createTextNode(node.applied_seq === null ? '—' : `#${node.applied_seq}`),
      node.lag === null
        ? el('span', { class: 'muted' }, 'not seen since start')
        : node.lag === 0
          ? badge('up to date', 'good')
          : badge(`${node.lag} behind`, 'bad'),
      node.seen_at === null ? document.createTextNode('—') : timeElement(node.seen_at),
      channelCell(node),
    ]),
    { id: 'live-nodes' },
  );
  nodes.querySelectorAll('tbody tr').forEach((row, index) => row.setAttribute('data-node', live.nodes[index].hostname));
  const recent = table(
    'Newest live changes',
    ['#', 'Committed', 'Table', 'Change', 'Row'],
    live.recent.map((delta) => [
      document.createTextNode(`#${delta.seq}`),
      timeElement(delta.committed_at),
      document.createTextNode(delta.table),
      document.createTextNode(delta.op === 'delete' ? 'deleted' : 'created or changed'),
      document.createTextNode(String(delta.id)),
    ]),
    { id: 'live-changes' },
  );
  target.replaceChildren(nodes, recent);
}

/** While a sync runs the page asks this often for its phase; otherwise it refreshes at the Network page's pace. */
const RUNNING_POLL_MS = 500;
const IDLE_POLL_MS = 5_000;

function nodeResults(record: SyncRecord): Node {
  if (record.report === null) return el('span', {}, badge('failed', 'bad'), ' ', el('small', {}, record.error ?? ''));
  const reloads = new Map(record.report.reload_results.map((result) => [result.node_id, result]));
  const list = el('ul', { class: 'results' });
  for (const result of record.report.sidecar_results) {
    const reload = reloads.get(result.node_id);
    list.append(
      el(
        'li',
        { 'data-node': result.hostname },
        el('strong', {}, result.hostname),
        ' ',
        result.success ? badge(`ok v${String(result.version ?? '?')}`, 'good') : badge('failed', 'bad'),
        ` ${result.duration_ms} ms`,
        result.error === null ? '' : el('small', {}, ` ${result.error}`),
        reload === undefined
          ? ''
          : el(
              'small',
              {},
              reload.success ? ` · drouting ${reload.skipped ? 'unchanged' : 'reloaded'}` : ` · drouting failed: ${reload.error ?? ''}`,
            ),
      ),
    );
  }
  if (record.report.sidecar_results.length === 0) list.append(el('li', { class: 'muted' }, 'no sidecar pushed'));
  return list;
}

function render(history: HTMLElement, status: HTMLElement, button: HTMLButtonElement, syncs: Syncs): void {
  if (syncs.running !== null) {
    const seconds = Math.max(0, Math.round((Date.now() - Date.parse(syncs.running.started_at)) / 1000));
    status.replaceChildren(el('progress', { 'aria-label': 'Sync running' }), ` Sync running for ${seconds} s: ${syncs.running.phase}…`);
  } else status.replaceChildren(syncs.data.length === 0 ? 'No sync since the control plane started.' : '');
  button.disabled = syncs.running !== null;
  const rows = syncs.data.map((record) => [
    timeElement(record.started_at),
    document.createTextNode(`${record.duration_ms} ms`),
    record.report === null
      ? badge('failed', 'bad')
      : document.createTextNode(`v${record.report.snapshot_version}${record.forced ? ' (forced)' : ''}`),
    nodeResults(record),
    record.report === null || record.report.warnings.length === 0
      ? el('span', { class: 'muted' }, '—')
      : el('ul', { class: 'warnings' }, ...record.report.warnings.map((warning) => el('li', {}, warning))),
  ]);
  const syncTable = table(
    'Syncs since the control plane started, newest first',
    ['Started', 'Took', 'Snapshot', 'Per node', 'Warnings'],
    rows,
    {
      id: 'syncs',
    },
  );
  syncTable.querySelectorAll('tbody tr').forEach((row, index) => {
    const record = syncs.data[index];
    const failed = record.report === null || record.report.sidecar_results.some((result) => !result.success);
    if (failed) row.classList.add('down');
  });
  history.replaceChildren(syncTable);
}

/** Shows the Sync page: the history of syncs and the live changes between them, and a button that runs one with its progress while it runs. */
export function showSync(root: HTMLElement): () => void {
  const button = el('button', { type: 'button', id: 'run-sync' }, 'Run a full sync');
  const status = el('p', { role: 'status', id: 'sync-status' });
  const outcome = el('div', { id: 'sync-outcome', 'aria-live': 'polite' });
  const history = el('div', {}, el('p', {}, 'Loading…'));
  const liveChanges = el('div', { id: 'live' });
  root.replaceChildren(
    el(
      'p',
      { class: 'muted' },
      'Pushes the configuration to every node’s sidecar and rewrites its drouting tables, as POST /api/opensips/routing/sync.',
    ),
    button,
    status,
    outcome,
    history,
    liveChanges,
  );
  let stopped = false;
  let timer = 0;
  const refresh = async (): Promise<void> => {
    const [answer, live] = await Promise.all([api<Syncs>('GET', '/api/console/syncs'), api<LiveChanges>('GET', '/api/opensips/deltas')]);
    if (stopped) return;
    if (live.ok) renderLiveChanges(liveChanges, live.body);
    else liveChanges.replaceChildren(el('p', { role: 'alert', class: 'alert' }, `Cannot read the live changes: ${live.error.error}`));
    if (answer.ok) render(history, status, button, answer.body);
    else history.replaceChildren(el('p', { role: 'alert', class: 'alert' }, `Cannot read the syncs: ${answer.error.error}`));
    window.clearTimeout(timer);
    timer = window.setTimeout(() => void refresh(), answer.ok && answer.body.running !== null ? RUNNING_POLL_MS : IDLE_POLL_MS);
  };
  button.addEventListener('click', () => {
    button.disabled = true;
    outcome.replaceChildren();
    status.replaceChildren(el('progress', { 'aria-label': 'Sync running' }), ' Sync starting…');
    const finished = api<{ snapshot_version: number; warnings: string[] }>('POST', '/api/opensips/routing/sync', {});
    // The POST answers when the sync is done; meanwhile the history endpoint says which phase it is in.
    window.clearTimeout(timer);
    timer = window.setTimeout(() => void refresh(), RUNNING_POLL_MS);
    void finished.then((answer) => {
      if (stopped) return;
      outcome.replaceChildren(
        answer.ok
          ? el(
              'p',
              { class: 'ok', id: 'sync-done' },
              `Sync done: snapshot v${answer.body.snapshot_version}, ${answer.body.warnings.length} warning(s).`,
            )
          : el(
              'p',
              { class: 'alert', role: 'alert', id: 'sync-done' },
              `Sync failed: ${answer.error.reason_code ?? answer.error.status}: ${answer.error.error}`,
            ),
      );
      void refresh();
    });
  });
  void refresh();
  return () => {
    stopped = true;
    window.clearTimeout(timer);
  };
}
