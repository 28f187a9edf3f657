import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  parseDigestAlgorithm,
  parseDigestHeader,
  verifyDigest,
  type DigestAlgorithm,
  type DigestCredentials,
} from '../../src/core/digest/digest.js';

const H = (algorithm: string, text: string): string => createHash(algorithm).update(text).digest('hex');

function credentialsOf(header: string): DigestCredentials {
  const parsed = parseDigestHeader(header);
  assert.ok(parsed.ok, parsed.ok ? '' : parsed.reason);
  return parsed.credentials;
}

describe('digest: published examples', () => {
  it('RFC 2617 3.5 (MD5, qop=auth)', () => {
    const header =
      'Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", ' +
      'qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41"';
    const ha1 = H('md5', 'Mufasa:testrealm@host.com:Circle Of Life');
    assert.deepEqual(verifyDigest(credentialsOf(header), 'GET', { ha1, algorithm: 'MD5' }), { ok: true });
    assert.equal(verifyDigest(credentialsOf(header), 'POST', { ha1, algorithm: 'MD5' }).ok, false);
  });

  const rfc7616 = (algorithm: string, response: string): string =>
    `Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", algorithm=${algorithm}, ` +
    `nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", ` +
    `qop=auth, response="${response}", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"`;

  it('RFC 7616 3.9.1 with MD5 and SHA-256', () => {
    const md5 = verifyDigest(credentialsOf(rfc7616('MD5', '8ca523f5e9506fed4657c9700eebdbec')), 'GET', {
      ha1: H('md5', 'Mufasa:http-auth@example.org:Circle of Life'),
      algorithm: 'MD5',
    });
    assert.deepEqual(md5, { ok: true });
    const sha256 = verifyDigest(
      credentialsOf(rfc7616('SHA-256', '753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1')),
      'GET',
      {
        ha1: H('sha256', 'Mufasa:http-auth@example.org:Circle of Life'),
        algorithm: 'SHA-256',
      },
    );
    assert.deepEqual(sha256, { ok: true });
  });

  it('accepts an upper-case hex response and an upper-case stored HA1', () => {
    const header = rfc7616('SHA-256', '753927FA0E85D155564E2E272A28D1802CA10DAF4496794697CF8DB5856CB6C1');
    const ha1 = H('sha256', 'Mufasa:http-auth@example.org:Circle of Life').toUpperCase();
    assert.deepEqual(verifyDigest(credentialsOf(header), 'GET', { ha1, algorithm: 'SHA-256' }), { ok: true });
  });
});

describe('digest: every algorithm, session and legacy forms', () => {
  const hashName: Record<DigestAlgorithm, string> = { MD5: 'md5', 'SHA-256': 'sha256', 'SHA-512-256': 'sha512-256' };
  const user = 'acme_trunk_01';
  const realm = 'sip.crazytel.com.au';
  const uri = 'sip:sip.crazytel.com.au';
  const nonce = 'b7c9036dbf357f7683f054aea940e5e7';
  const cnonce = '0a4f113b';

  for (const algorithm of ['MD5', 'SHA-256', 'SHA-512-256'] as const) {
    for (const session of [false, true]) {
      for (const qop of ['auth', null] as const) {
        if (session && qop === null) continue; // -sess needs a cnonce, which comes with qop
        const name = `${algorithm}${session ? '-sess' : ''} ${qop ?? 'no qop'}`;
        it(name, () => {
          const h = (text: string): string => H(hashName[algorithm], text);
          const storedHa1 = h(`${user}:${realm}:s3cret`);
          const ha1 = session ? h(`${storedHa1}:${nonce}:${cnonce}`) : storedHa1;
          const ha2 = h(`REGISTER:${uri}`);
          const response = qop === null ? h(`${ha1}:${nonce}:${ha2}`) : h(`${ha1}:${nonce}:00000001:${cnonce}:auth:${ha2}`);
          const header =
            `Digest username="${user}",realm="${realm}",nonce="${nonce}",uri="${uri}",response="${response}",algorithm=${algorithm}${session ? '-sess' : ''}` +
            (qop === null ? '' : `,qop=auth,nc=00000001,cnonce="${cnonce}"`);
          const secret = { ha1: storedHa1, algorithm };
          assert.deepEqual(verifyDigest(credentialsOf(header), 'REGISTER', secret), { ok: true });
          assert.equal(verifyDigest(credentialsOf(header), 'INVITE', secret).ok, false, 'other method');
          assert.equal(
            verifyDigest(credentialsOf(header.replace(nonce, nonce.replace('b', 'c'))), 'REGISTER', secret).ok,
            false,
            'tampered nonce',
          );
          assert.equal(
            verifyDigest(credentialsOf(header), 'REGISTER', { ha1: h(`${user}:${realm}:wrong`), algorithm }).ok,
            false,
            'wrong password',
          );
        });
      }
    }
  }

  it('refuses an algorithm other than the stored one, -sess included, and an unknown one', () => {
    const header = `Digest username="u", realm="r", nonce="n", uri="sip:r", response="${'0'.repeat(64)}", algorithm=SHA-256`;
    assert.deepEqual(verifyDigest(credentialsOf(header), 'REGISTER', { ha1: '0'.repeat(32), algorithm: 'MD5' }), {
      ok: false,
      reason: 'algorithm mismatch',
    });
    const sess = `${header}-sess, qop=auth, nc=00000001, cnonce="c"`;
    assert.deepEqual(verifyDigest(credentialsOf(sess), 'REGISTER', { ha1: '0'.repeat(64), algorithm: 'SHA-512-256' }), {
      ok: false,
      reason: 'algorithm mismatch',
    });
    const sha1 = header.replace('SHA-256', 'SHA-1');
    const verdict = verifyDigest(credentialsOf(sha1), 'REGISTER', { ha1: '0'.repeat(32), algorithm: 'MD5' });
    assert.equal(verdict.ok, false);
    assert.match(verdict.reason, /unknown algorithm/);
  });

  it('refuses a truncated or extended response (length differs)', () => {
    const ha1 = H('md5', 'u:r:p');
    const response = H('md5', `${ha1}:n:${H('md5', 'REGISTER:sip:r')}`);
    const header = (r: string): string => `Digest username="u", realm="r", nonce="n", uri="sip:r", response="${r}"`;
    const secret = { ha1, algorithm: 'MD5' as const };
    assert.deepEqual(verifyDigest(credentialsOf(header(response)), 'REGISTER', secret), { ok: true });
    assert.deepEqual(verifyDigest(credentialsOf(header(response.slice(0, -1))), 'REGISTER', secret), {
      ok: false,
      reason: 'wrong response',
    });
    assert.deepEqual(verifyDigest(credentialsOf(header(`${response}0`)), 'REGISTER', secret), { ok: false, reason: 'wrong response' });
  });

  it('hashes qop as the UA sent it (OpenSIPS does the same)', () => {
    const ha1 = H('md5', 'u:r:p');
    const response = H('md5', `${ha1}:n:00000001:c:AUTH:${H('md5', 'REGISTER:sip:r')}`);
    const header = `Digest username="u", realm="r", nonce="n", uri="sip:r", qop=AUTH, nc=00000001, cnonce="c", response="${response}"`;
    assert.deepEqual(verifyDigest(credentialsOf(header), 'REGISTER', { ha1, algorithm: 'MD5' }), { ok: true });
  });

  it('treats a missing algorithm as MD5', () => {
    const ha1 = H('md5', 'u:r:p');
    const response = H('md5', `${ha1}:n:${H('md5', 'REGISTER:sip:r')}`);
    assert.deepEqual(
      verifyDigest(credentialsOf(`Digest username="u", realm="r", nonce="n", uri="sip:r", response="${response}"`), 'REGISTER', {
        ha1,
        algorithm: 'MD5',
      }),
      { ok: true },
    );
  });

  it('refuses auth-int, userhash, and qop=auth without nc/cnonce', () => {
    const base = 'Digest username="u", realm="r", nonce="n", uri="sip:r", response="00"';
    const secret = { ha1: '00', algorithm: 'MD5' as const };
    assert.deepEqual(verifyDigest(credentialsOf(`${base}, qop=auth-int, nc=1, cnonce="c"`), 'REGISTER', secret), {
      ok: false,
      reason: 'qop auth-int not supported',
    });
    assert.deepEqual(verifyDigest(credentialsOf(`${base}, userhash=true`), 'REGISTER', secret), {
      ok: false,
      reason: 'userhash not supported',
    });
    assert.deepEqual(verifyDigest(credentialsOf(`${base}, qop=auth`), 'REGISTER', secret), { ok: false, reason: 'cnonce required' });
  });
});

describe('digest: header parsing', () => {
  it('reads quoted and unquoted parameters in any order, with escapes and spacing', () => {
    const credentials = credentialsOf(
      'digest   response = "abc" ,uri=sip:host, realm="a \\"quoted\\" realm",nonce="n1",  username="alice", qop=auth, nc=00000002, cnonce="x"',
    );
    assert.deepEqual(
      [credentials.username, credentials.realm, credentials.uri, credentials.response, credentials.nonce, credentials.qop, credentials.nc],
      ['alice', 'a "quoted" realm', 'sip:host', 'abc', 'n1', 'auth', '00000002'],
    );
  });

  const refusals: [string, RegExp][] = [
    ['', /not a Digest/],
    ['Basic abc', /not a Digest/],
    ['Basic YWxhZGRpbjpvcGVuc2VzYW1l', /not a Digest/],
    ['Digestive username="u"', /not a Digest/],
    ['Digest', /no parameters/],
    ['Digest   ', /no parameters/],
    ['Digest username="u", realm=, nonce="n", uri="sip:r", response="x"', /realm has no value/],
    ['Digest username="u", realm="r", nonce="n", uri="sip:r"', /missing response/],
    ['Digest username="u", username="v", realm="r", nonce="n", uri="sip:r", response="x"', /duplicate/],
    ['Digest username="u", realm="r", nonce="n", uri="sip:r", response="x', /unterminated/],
    ['Digest username="u, realm="r", nonce="n"', /expected ','/],
    ['Digest username', /no value/],
    ['Digest username="u" realm="r"', /expected ','/],
    [`Digest username="${'a'.repeat(100_000)}"`, /too long/],
  ];
  for (const [header, reason] of refusals) {
    it(`refuses ${JSON.stringify(header.slice(0, 50))}`, () => {
      const parsed = parseDigestHeader(header);
      assert.equal(parsed.ok, false);
      assert.match(parsed.reason, reason);
    });
  }

  it('refuses 100k characters at once, and hostile input under the limit', () => {
    const hostile = [
      `Digest username="${'\\"'.repeat(4000)}`, // escapes all the way, never closed
      `Digest ${', '.repeat(4000)}`, // separators only
      `Digest username="u", realm="${'a'.repeat(8100)}`, // one long unterminated quote
      `Digest ${'x'.repeat(8180)}`, // one long name, no '='
    ];
    for (const header of hostile) {
      assert.ok(header.length <= 8192, 'under the limit, so the parser really walks it');
      assert.equal(parseDigestHeader(header).ok, false);
    }
    const huge = `Digest username="${'a'.repeat(100_000)}"`;
    // Parse time is not asserted here (timings belong in bench/); the parser is a single forward scan.
    assert.deepEqual(parseDigestHeader(huge), { ok: false, reason: 'header too long' });
  });

  it('knows the algorithm spellings of the schema and the prose', () => {
    assert.deepEqual(
      [
        'md5',
        'MD5',
        'sha256',
        'SHA-256',
        'sha-256',
        'SHA256',
        'sha512-256',
        'SHA-512-256',
        'sha512_256',
        'SHA512-256',
        'sha-512-256',
        'sha1',
        'sha512',
        'MD5-sess',
        '',
      ].map(parseDigestAlgorithm),
      [
        'MD5',
        'MD5',
        'SHA-256',
        'SHA-256',
        'SHA-256',
        'SHA-256',
        'SHA-512-256',
        'SHA-512-256',
        'SHA-512-256',
        'SHA-512-256',
        'SHA-512-256',
        null,
        null,
        null,
        null,
      ],
    );
  });
});
