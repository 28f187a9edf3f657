/**
 * Epoch milliseconds as `Date.prototype.toISOString` writes them, without a Date per call: a CDR carries
 * four instants to the centre, and `new Date(ms).toISOString()` was 3–4% of a CDR's event-loop time. The
 * day's part (`YYYY-MM-DDT`) comes from toISOString itself, once per day seen (kept for the last few
 * days: CDRs of one moment fall on one or two), so every year it can write, negative and six-digit ones
 * included, comes out the same; the time of day is integer arithmetic. test/unit/iso-instant.test.ts pins
 * it to toISOString over random instants.
 */
const DAY_MS = 86_400_000;
const DAYS_KEPT = 4;
/** The furthest instant a Date holds either side of the epoch. */
const MAX_MS = 8.64e15;

/** "00".."99": two digits without padStart per field. */
const TWO_DIGITS: string[] = Array.from({ length: 100 }, (_, n) => (n < 10 ? `0${n}` : String(n)));
/** "000".."999". */
const THREE_DIGITS: string[] = Array.from({ length: 1000 }, (_, n) => TWO_DIGITS[Math.floor(n / 10)] + String(n % 10));

const dayNumbers: number[] = [];
const dayPrefixes: string[] = [];
let nextSlot = 0;

function dayPrefix(day: number): string {
  for (let i = 0; i < dayNumbers.length; i++) if (dayNumbers[i] === day) return dayPrefixes[i];
  const prefix = new Date(day * DAY_MS).toISOString().slice(0, -13); // drops "HH:MM:SS.mmmZ"
  dayNumbers[nextSlot] = day;
  dayPrefixes[nextSlot] = prefix;
  nextSlot = (nextSlot + 1) % DAYS_KEPT;
  return prefix;
}

/** The same string as `new Date(ms).toISOString()`; throws the same RangeError for what it cannot write. */
export function isoInstant(ms: number): string {
  // Fractions, NaN, out of range: Date's own answer (or RangeError).
  if (!Number.isSafeInteger(ms) || ms > MAX_MS || ms < -MAX_MS) return new Date(ms).toISOString();
  const day = Math.floor(ms / DAY_MS);
  const prefix = dayPrefix(day);
  let rest = ms - day * DAY_MS;
  const milli = rest % 1000;
  rest = (rest - milli) / 1000;
  const second = rest % 60;
  rest = (rest - second) / 60;
  const minute = rest % 60;
  const hour = (rest - minute) / 60;
  return `${prefix}${TWO_DIGITS[hour]}:${TWO_DIGITS[minute]}:${TWO_DIGITS[second]}.${THREE_DIGITS[milli]}Z`;
}
