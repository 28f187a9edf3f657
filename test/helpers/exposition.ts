import assert from 'node:assert/strict';

/**
 * A strict reading of Prometheus text exposition (format 0.0.4), as a scraper would refuse it: every line a
 * HELP, a TYPE or a sample of the family its TYPE declared; label values quoted with only \\, \" and \n
 * escaped; no series twice; a histogram's buckets cumulative and ending at le="+Inf" with its count. Throws
 * (an assertion) at the first line that breaks a rule; else the samples, by name and labels.
 */
export interface Exposition {
  /** A sample's value; undefined when the series is not there. Labels in any order. */
  value(name: string, labels?: Record<string, string>): number | undefined;
  /** Every series of one metric name, with its labels. */
  series(name: string): { labels: Record<string, string>; value: number }[];
  /** The declared type of each family. */
  types: Map<string, string>;
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)$`);
const LABEL = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\["\\n])*)"(,|$)/;
const TYPES = new Set(['counter', 'gauge', 'histogram']);

function parseLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let rest = text;
  while (rest !== '') {
    const match = LABEL.exec(rest);
    assert.ok(match !== null, `malformed labels in ${JSON.stringify(line)}`);
    assert.ok(!(match[1] in labels), `label ${match[1]} twice in ${JSON.stringify(line)}`);
    labels[match[1]] = match[2].replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
    rest = rest.slice(match[0].length);
  }
  return labels;
}

function key(name: string, labels: Record<string, string>): string {
  return `${name}${JSON.stringify(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)))}`;
}

export function parseExposition(text: string): Exposition {
  assert.ok(text.endsWith('\n'), 'the exposition ends with a newline');
  const samples = new Map<string, { name: string; labels: Record<string, string>; value: number }>();
  const types = new Map<string, string>();
  let family: string | null = null;
  // Per histogram series (its labels without le): the last cumulative bucket count, and whether +Inf came.
  const buckets = new Map<string, { last: number; inf: number | null }>();
  for (const line of text.slice(0, -1).split('\n')) {
    if (line.startsWith('# HELP ')) {
      assert.match(line, new RegExp(`^# HELP ${NAME} \\S`), `bad HELP line ${JSON.stringify(line)}`);
      continue;
    }
    if (line.startsWith('# TYPE ')) {
      const [, , name, type] = line.split(' ');
      assert.ok(TYPES.has(type), `unknown type in ${JSON.stringify(line)}`);
      assert.ok(!types.has(name), `${name} declared twice`);
      types.set(name, type);
      family = name;
      continue;
    }
    const match = SAMPLE.exec(line);
    assert.ok(match !== null, `not a sample line: ${JSON.stringify(line)}`);
    const [, name, labelText, valueText] = match;
    assert.ok(family !== null, `sample before any TYPE: ${line}`);
    const type = types.get(family)!;
    const allowed = type === 'histogram' ? [`${family}_bucket`, `${family}_sum`, `${family}_count`] : [family];
    assert.ok(allowed.includes(name), `${name} is not of the family ${family} (${type})`);
    if (type === 'counter') assert.ok(family.endsWith('_total'), `counter ${family} does not end in _total`);
    const value = valueText === '+Inf' ? Infinity : valueText === '-Inf' ? -Infinity : Number(valueText);
    assert.ok(valueText === 'NaN' || !Number.isNaN(value), `bad value in ${JSON.stringify(line)}`);
    const labels = (labelText as string | undefined) === undefined ? {} : parseLabels(labelText, line);
    const id = key(name, labels);
    assert.ok(!samples.has(id), `series twice: ${line}`);
    samples.set(id, { name, labels, value });
    if (name.endsWith('_bucket') && type === 'histogram') {
      const { le, ...rest } = labels as Partial<Record<string, string>>;
      assert.ok(le !== undefined, `bucket without le: ${line}`);
      const series = key(family, rest as Record<string, string>);
      const state = buckets.get(series) ?? { last: 0, inf: null };
      assert.ok(state.inf === null, `bucket after le="+Inf": ${line}`);
      assert.ok(value >= state.last, `buckets not cumulative at ${line}`);
      state.last = value;
      if (le === '+Inf') state.inf = value;
      buckets.set(series, state);
    }
    if (name.endsWith('_count') && type === 'histogram') {
      const state = buckets.get(key(family, labels));
      assert.ok(state?.inf === value, `${line}: its buckets do not end at le="+Inf" with the count`);
    }
  }
  return {
    value: (name, labels = {}) => samples.get(key(name, labels))?.value,
    series: (name) => [...samples.values()].filter((sample) => sample.name === name).map(({ labels, value }) => ({ labels, value })),
    types,
  };
}
