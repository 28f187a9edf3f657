/** A few helpers so pages build DOM nodes, never HTML strings (nothing a sidecar says can become markup). */
type Child = Node | string | null | undefined | false;

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Record<string, string> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  for (const child of children) if (child !== null && child !== undefined && child !== false) element.append(child);
  return element;
}

export function table(
  caption: string,
  headings: string[],
  rows: (Node | string)[][],
  attributes: Record<string, string> = {},
): HTMLTableElement {
  return el(
    'table',
    attributes,
    el('caption', {}, caption),
    el('thead', {}, el('tr', {}, ...headings.map((heading) => el('th', { scope: 'col' }, heading)))),
    el('tbody', {}, ...rows.map((cells) => el('tr', {}, ...cells.map((cell) => el('td', {}, cell))))),
  );
}

export function badge(text: string, kind: 'good' | 'bad' | 'neutral'): HTMLElement {
  return el('span', { class: `badge ${kind}` }, text);
}
