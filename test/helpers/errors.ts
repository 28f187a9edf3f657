import assert from 'node:assert/strict';
import { CATALOGUE, type CatalogueEntry } from '../../src/core/errors/catalogue.js';
import { STATUS_TEXT } from '../../src/core/http/errors.js';

/**
 * An error response as both processes answer one: the contract's ErrorResponse (message, reason
 * phrase, status) and a `reason_code` from the catalogue whose status is the response's.
 */
export function assertErrorResponse(response: { status: number; body: any }, status: number, pattern?: RegExp): void {
  assert.equal(response.status, status, JSON.stringify(response.body));
  assert.equal(response.body.status, status);
  assert.equal(response.body.code, STATUS_TEXT[status]);
  assert.equal(typeof response.body.error, 'string');
  const entry = (CATALOGUE as Record<string, CatalogueEntry | undefined>)[response.body.reason_code];
  assert.ok(entry !== undefined, `reason_code ${JSON.stringify(response.body.reason_code)} is not in the catalogue`);
  assert.equal(entry.http, status, `reason_code ${response.body.reason_code} is catalogued with HTTP ${entry.http}`);
  if (pattern) assert.match(response.body.error, pattern);
}
