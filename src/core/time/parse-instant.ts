/**
 * An RFC 3339 timestamp as epoch ms, NaN for anything else: what `RFC3339.test(text) ? Date.parse(text) :
 * NaN` gives, except that a date or time of day that does not exist is NaN too. Date.parse rolls a day the
 * month lacks into the next month (2026-02-30 is read as March 2) and hour 24 into the next day: a CDR with
 * such a time was billed for a call at another instant than the one the switch wrote, so it is refused.
 * A CDR carries three, and the regex and Date.parse (a call into the runtime's general date parser) were ~4% of
 * a CDR's event-loop time. The shapes OpenSIPS and toISOString write (`YYYY-MM-DDTHH:MM:SS`, optional
 * `.mmm`, then `Z` or `±HH:MM`) are read here, by integer arithmetic; the rarer ones (other fraction lengths,
 * a lower-case or space separator) go to the regex and Date.parse, once their fields are checked to exist.
 * test/unit/parse-instant.test.ts pins it to that reference over random and edge inputs.
 */
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

const DASH = 0x2d;
const COLON = 0x3a;
const DOT = 0x2e;
const PLUS = 0x2b;
const T = 0x54;
const Z = 0x5a;
const DAY_MS = 86_400_000;

/** The number `count` decimal digits from `from` spell; -1 if any is not a digit. */
function digits(text: string, from: number, count: number): number {
  let value = 0;
  for (let i = from; i < from + count; i++) {
    const digit = text.charCodeAt(i) - 0x30;
    // Written so that NaN (past the end of the text) is not a digit either.
    if (!(digit >= 0 && digit <= 9)) return -1;
    value = value * 10 + digit;
  }
  return value;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's days_from_civil; years 0–9999 here). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}

/**
 * Whether the date and time of day at the fixed places of an RFC 3339 text exist: month 1–12, a day the month
 * has, hour 0–23, minute and second 0–59 (Date.parse refuses a leap second's 60 as well). Negative: not digits.
 */
function fieldsExist(year: number, month: number, day: number, hour: number, minute: number, second: number): boolean {
  if (year < 0 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return false;
  return hour >= 0 && hour <= 23 && minute >= 0 && minute <= 59 && second >= 0 && second <= 59;
}

/** The common shapes; NaN: not one of them (the caller then asks the regex and Date.parse). */
function parseCommon(text: string): number {
  const length = text.length;
  if (length < 20 || length > 29) return Number.NaN;
  if (
    text.charCodeAt(4) !== DASH ||
    text.charCodeAt(7) !== DASH ||
    text.charCodeAt(10) !== T ||
    text.charCodeAt(13) !== COLON ||
    text.charCodeAt(16) !== COLON
  )
    return Number.NaN;
  const year = digits(text, 0, 4);
  const month = digits(text, 5, 2);
  const day = digits(text, 8, 2);
  const hour = digits(text, 11, 2);
  const minute = digits(text, 14, 2);
  const second = digits(text, 17, 2);
  if (!fieldsExist(year, month, day, hour, minute, second)) return Number.NaN;
  let at = 19;
  let ms = 0;
  if (text.charCodeAt(at) === DOT) {
    ms = digits(text, 20, 3);
    if (ms < 0) return Number.NaN;
    at = 23;
  }
  let offsetMinutes = 0;
  const zone = text.charCodeAt(at);
  if (zone === Z) {
    if (length !== at + 1) return Number.NaN;
  } else if (zone === PLUS || zone === DASH) {
    if (length !== at + 6 || text.charCodeAt(at + 3) !== COLON) return Number.NaN;
    const offsetHours = digits(text, at + 1, 2);
    const offsetMins = digits(text, at + 4, 2);
    if (offsetHours < 0 || offsetHours > 23 || offsetMins < 0 || offsetMins > 59) return Number.NaN;
    offsetMinutes = (zone === PLUS ? 1 : -1) * (offsetHours * 60 + offsetMins);
  } else return Number.NaN;
  return daysFromCivil(year, month, day) * DAY_MS + hour * 3_600_000 + minute * 60_000 + second * 1000 + ms - offsetMinutes * 60_000;
}

export function parseInstant(text: string): number {
  const ms = parseCommon(text);
  if (!Number.isNaN(ms)) return ms;
  if (!RFC3339.test(text)) return Number.NaN;
  // The regex put every field at its fixed place.
  const exists = fieldsExist(
    digits(text, 0, 4),
    digits(text, 5, 2),
    digits(text, 8, 2),
    digits(text, 11, 2),
    digits(text, 14, 2),
    digits(text, 17, 2),
  );
  return exists ? Date.parse(text) : Number.NaN;
}
