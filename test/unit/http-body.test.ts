import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BodyBudget, GrowingBody } from '../../src/core/http/body-budget.js';
import { declaredLength, plainLength } from '../../src/core/http/content-length.js';
import { mediaType } from '../../src/core/http/body.js';

describe('request body buffers', () => {
  it('grow by doubling as bytes arrive, end at the declared size, and give their bytes back once', () => {
    const budget = new BodyBudget(1024 * 1024);
    const body = new GrowingBody(budget, 10 * 1024 * 1024, 200_000);
    assert.equal(body.append(new Uint8Array(1000).fill(1)), 'ok');
    assert.equal(budget.heldBytes, 64 * 1024); // the first buffer, not the declared 200 000
    assert.equal(body.append(new Uint8Array(99_000).fill(2)), 'ok');
    assert.equal(budget.heldBytes, 128 * 1024);
    assert.equal(body.append(new Uint8Array(100_000).fill(3)), 'ok');
    assert.equal(budget.heldBytes, 200_000); // capped at the declared length
    const bytes = body.bytes();
    assert.deepEqual([bytes.byteLength, bytes.buffer.byteLength, bytes[0], bytes[1000], bytes[199_999]], [200_000, 200_000, 1, 2, 3]);
    assert.equal(body.append(new Uint8Array(1)), 'too_large');
    // A handler may transfer the buffer away (the snapshot's worker); the budget still gets its bytes back.
    structuredClone(bytes.buffer, { transfer: [bytes.buffer as ArrayBuffer] });
    body.release();
    body.release();
    assert.equal(budget.heldBytes, 0);
  });

  it('refuse past the budget while another body holds bytes, but let a body alone pass it', () => {
    const budget = new BodyBudget(100_000);
    const alone = new GrowingBody(budget, 1_000_000, 0);
    assert.equal(alone.append(new Uint8Array(300_000)), 'ok');
    const second = new GrowingBody(budget, 1_000_000, 0);
    assert.equal(second.append(new Uint8Array(10)), 'busy');
    alone.release();
    assert.equal(second.append(new Uint8Array(10)), 'ok');
  });
});

describe('Content-Length and Content-Type', () => {
  it('takes one value or equal repeats, and refuses non-digits and disagreement', () => {
    assert.deepEqual(declaredLength([]), { ok: true, bytes: null });
    assert.deepEqual(declaredLength(['42']), { ok: true, bytes: 42 });
    assert.deepEqual(declaredLength(['42', '42']), { ok: true, bytes: 42 });
    assert.deepEqual(declaredLength(['42, 42']), { ok: true, bytes: 42 });
    assert.equal(declaredLength(['42', '43']).ok, false);
    assert.equal(declaredLength(['4 2']).ok, false);
    assert.equal(declaredLength(['-1']).ok, false);
    assert.equal(declaredLength(['0x10']).ok, false);
  });

  it('reads a plain number the way the general parser does, and leaves everything else to it', () => {
    for (const value of ['0', '7', '42', '000042', '1048576', '999999999999999'])
      assert.deepEqual({ ok: true, bytes: plainLength(value) }, declaredLength([value]), value);
    for (const value of ['', ' 42', '42 ', '42, 42', '4 2', '-1', '+1', '0x10', '1e3', '4.2', '1234567890123456'])
      assert.equal(plainLength(value), -1, JSON.stringify(value));
  });

  it('reads the media type without parameters', () => {
    assert.equal(mediaType('Application/JSON; charset=utf-8'), 'application/json');
    assert.equal(mediaType('application/jsonx'), 'application/jsonx');
  });
});
