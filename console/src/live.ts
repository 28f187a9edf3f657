import { api } from './api.js';
import { el } from './dom.js';
import { stackedBars, type ChartSeries } from './chart.js';

/** GET /api/console/live (sync/console/metrics-sampler.ts): the last hour in minute bins, over every node. */
interface Live {
  from: string;
  bin_seconds: number;
  groups: {
    calls?: { key: string; values: number[] }[];
    carrier?: { key: string; values: number[] }[];
    failover?: { key: string; values: number[] }[];
  };
}
interface CarrierRow {
  id: number;
  name: string;
}

/** The charts follow the centre's sampling; a minute bin fills as it goes, so a refresh every 10 s is plenty. */
const REFRESH_SECONDS = 10;

/** Admitted first (the bar's base), then the refusals by reason. */
function callSeries(rows: { key: string; values: number[] }[]): ChartSeries[] {
  return [...rows]
    .sort((a, b) => (a.key === 'admitted' ? -1 : b.key === 'admitted' ? 1 : a.key.localeCompare(b.key)))
    .map((row) => ({ label: row.key === 'admitted' ? 'admitted' : `refused: ${row.key}`, values: row.values }));
}

export function showLive(root: HTMLElement): () => void {
  root.replaceChildren(el('p', {}, 'Loading…'));
  let stopped = false;
  let carriers = new Map<string, string>();
  const refresh = async (): Promise<void> => {
    const [answer, trunks] = await Promise.all([
      api<Live>('GET', '/api/console/live'),
      carriers.size === 0 ? api<{ data: CarrierRow[] }>('GET', '/api/carrier-trunks?limit=10000') : Promise.resolve(null),
    ]);
    if (stopped) return;
    if (trunks?.ok) carriers = new Map(trunks.body.data.map((row) => [String(row.id), row.name]));
    if (!answer.ok) {
      root.replaceChildren(el('p', { role: 'alert', class: 'alert' }, `Cannot read the live figures: ${answer.error.error}`));
      return;
    }
    const live = answer.body;
    const from = Date.parse(live.from);
    const bins = (live.groups.calls?.[0] ?? live.groups.carrier?.[0] ?? live.groups.failover?.[0])?.values.length ?? 60;
    const starts = Array.from({ length: bins }, (_, bin) => new Date(from + bin * live.bin_seconds * 1000));
    const label = (date: Date): string => date.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
    root.replaceChildren(
      el(
        'p',
        { class: 'muted' },
        `The last hour, a bar a minute, over every node, from the sidecars’ metrics as the control plane samples them (times in your zone, ${Intl.DateTimeFormat().resolvedOptions().timeZone}).`,
      ),
      el(
        'div',
        { class: 'charts' },
        el(
          'div',
          { id: 'chart-calls' },
          stackedBars('Calls admitted and refused, by reason', callSeries(live.groups.calls ?? []), starts, label),
        ),
        el(
          'div',
          { id: 'chart-carriers' },
          stackedBars(
            'Calls routed, by carrier',
            (live.groups.carrier ?? []).map((row) => ({ label: carriers.get(row.key) ?? `carrier trunk ${row.key}`, values: row.values })),
            starts,
            label,
          ),
        ),
        el(
          'div',
          { id: 'chart-failovers' },
          stackedBars(
            'Failovers, by SIP code',
            (live.groups.failover ?? []).map((row) => ({ label: `SIP ${row.key}`, values: row.values })),
            starts,
            label,
          ),
        ),
      ),
    );
  };
  void refresh();
  const timer = window.setInterval(() => void refresh(), REFRESH_SECONDS * 1000);
  return () => {
    stopped = true;
    window.clearInterval(timer);
  };
}
