/**
 * Numbers for people. Money arrives as decimal strings and is never turned into a float (Intl would round a
 * rate's sixth decimal away): the digits are grouped by hand, and only the currency's symbol comes from Intl.
 */
export function money(amount: string | undefined | null, currency: string): string {
  if (amount === undefined || amount === null || amount === '') return '—';
  const match = /^(-?)(\d+)(?:\.(\d+))?$/.exec(amount);
  if (match === null) return `${amount} ${currency}`;
  const [, sign, whole, fraction = ''] = match;
  const symbol =
    new Intl.NumberFormat(undefined, { style: 'currency', currency, currencyDisplay: 'narrowSymbol' })
      .formatToParts(0)
      .find((part) => part.type === 'currency')?.value ?? currency;
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  // Rates carry more decimals than a currency's minor unit: all of them are shown, none rounded away.
  const decimals = fraction.replace(/0+$/, '').padEnd(2, '0');
  return `${sign}${symbol}${grouped}.${decimals} ${currency}`;
}

/** A time in the operator's own zone; the UTC instant on hover (the title). */
export function timeElement(iso: string | null | undefined): HTMLElement | string {
  if (iso === null || iso === undefined) return '—';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const element = document.createElement('time');
  element.dateTime = date.toISOString();
  element.title = `${date
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, '')} UTC`;
  element.textContent = date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
  return element;
}

export function seconds(value: number | null | undefined): string {
  if (value === null || value === undefined) return '—';
  if (value < 120) return `${value} s`;
  if (value < 7200) return `${Math.round(value / 60)} min`;
  if (value < 172800) return `${Math.round(value / 3600)} h`;
  return `${Math.round(value / 86400)} d`;
}
