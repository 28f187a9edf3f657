/**
 * A stacked bar chart in inline SVG, drawn here (no chart library): one bar per time bin, one colour per
 * series, a legend, and a title on each bar for hover. Built with DOM calls, never markup strings.
 */
const SVG = 'http://www.w3.org/2000/svg';
const COLOURS = ['#1f5fbf', '#16794a', '#b3261e', '#c77700', '#6b3fa0', '#00838f', '#8d6e63', '#5b6675', '#d81b60', '#7cb342'];

export interface ChartSeries {
  label: string;
  values: number[];
}

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attributes: Record<string, string | number>): SVGElementTagNameMap[K] {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  return element;
}

export function stackedBars(title: string, series: ChartSeries[], binStarts: Date[], binLabel: (date: Date) => string): HTMLElement {
  const width = 640;
  const height = 180;
  const left = 40;
  const bottom = 20;
  const bins = binStarts.length;
  const totals = binStarts.map((_, bin) => series.reduce((sum, one) => sum + one.values[bin], 0));
  const max = Math.max(1, ...totals);
  const plotHeight = height - bottom - 8;
  const barWidth = (width - left) / Math.max(1, bins);
  const sums = series.map((one) => one.values.reduce((a, b) => a + b, 0));
  const chart = svg('svg', {
    viewBox: `0 0 ${width} ${height}`,
    role: 'img',
    'aria-label': `${title}: ${series.map((one, i) => `${one.label} ${sums[i]}`).join(', ') || 'nothing in the last hour'}`,
  });
  chart.classList.add('chart');
  // The axis: zero, the top, and a time label at each quarter.
  for (const [value, y] of [
    [0, 8 + plotHeight],
    [max, 8],
  ] as const) {
    chart.append(svg('line', { x1: left, x2: width, y1: y, y2: y, class: 'grid' }));
    const label = svg('text', { x: left - 4, y: y + 4, 'text-anchor': 'end', class: 'axis' });
    label.textContent = String(value);
    chart.append(label);
  }
  for (let bin = 0; bin < bins; bin += Math.max(1, Math.floor(bins / 4))) {
    const label = svg('text', { x: left + bin * barWidth, y: height - 4, class: 'axis' });
    label.textContent = binLabel(binStarts[bin]);
    chart.append(label);
  }
  for (let bin = 0; bin < bins; bin++) {
    if (totals[bin] === 0) continue;
    const group = svg('g', {});
    const hover = svg('title', {});
    hover.textContent = `${binLabel(binStarts[bin])}: ${series
      .filter((one) => one.values[bin] > 0)
      .map((one) => `${one.label} ${one.values[bin]}`)
      .join(', ')}`;
    group.append(hover);
    let y = 8 + plotHeight;
    series.forEach((one, index) => {
      const value = one.values[bin];
      if (value === 0) return;
      const barHeight = (value / max) * plotHeight;
      y -= barHeight;
      group.append(
        svg('rect', {
          x: left + bin * barWidth + 1,
          y,
          width: Math.max(1, barWidth - 2),
          height: barHeight,
          fill: COLOURS[index % COLOURS.length],
        }),
      );
    });
    chart.append(group);
  }
  const legend = document.createElement('ul');
  legend.className = 'legend';
  series.forEach((one, index) => {
    const item = document.createElement('li');
    const swatch = document.createElement('span');
    swatch.className = 'swatch';
    swatch.style.background = COLOURS[index % COLOURS.length];
    item.append(swatch, `${one.label}: ${sums[index]}`);
    legend.append(item);
  });
  if (series.length === 0) {
    const item = document.createElement('li');
    item.className = 'muted';
    item.textContent = 'nothing in the last hour';
    legend.append(item);
  }
  const figure = document.createElement('figure');
  const caption = document.createElement('figcaption');
  caption.textContent = title;
  figure.append(caption, chart, legend);
  return figure;
}
