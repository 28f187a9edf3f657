import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JWT_BEARER_MAX, bearerToken } from '../../src/core/http/bearer.js';

describe('the Bearer header, read one way for nodes, portal users and partners', () => {
  it('takes a token68 after a case-insensitive scheme and one or more spaces', () => {
    assert.equal(bearerToken('Bearer abc_DEF-1'), 'abc_DEF-1');
    assert.equal(bearerToken('bearer abc'), 'abc');
    assert.equal(bearerToken('BEARER   abc  '), 'abc');
    assert.equal(bearerToken('Bearer YTpi+/~.=='), 'YTpi+/~.==');
    const jwt = `eyJhbGciOiJSUzI1NiJ9.${'e'.repeat(1500)}.${'s'.repeat(342)}`;
    assert.equal(bearerToken(`Bearer ${jwt}`, JWT_BEARER_MAX), jwt);
  });

  it('answers no token for anything else, so a verifier never sees it', () => {
    for (const header of [
      undefined,
      '',
      'abc',
      'Bearer',
      'Bearer ',
      'Basic YTpi',
      'Bearer a b',
      'Bearer a,Basic b',
      'Bearer a=b',
      'Bearer\tabc',
      'Bearer ab\u00e7',
      'Bearer abc\r\nX-Injected: 1',
      `Bearer ${'a'.repeat(513)}`,
    ])
      assert.equal(bearerToken(header), null, JSON.stringify(header));
    assert.equal(bearerToken(`Bearer ${'a'.repeat(JWT_BEARER_MAX + 1)}`, JWT_BEARER_MAX), null);
  });
});
