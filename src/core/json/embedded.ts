/**
 * JSON text this process wrote (JSON.stringify of an object or array) as a value inside a larger JSON text,
 * without parsing it again. Anything not shaped like an object or array is written as a string instead, so
 * the larger text stays valid JSON whatever it was given: a log record that did not parse would end the log.
 */
export function embeddedJson(json: string): string {
  const first = json.charCodeAt(0);
  const last = json.charCodeAt(json.length - 1);
  return (first === 0x7b && last === 0x7d) || (first === 0x5b && last === 0x5d) ? json : JSON.stringify(json);
}
