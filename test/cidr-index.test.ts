import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createCidrIndexBuilder, createCidrMatches, lookupCidr, type CidrIndex } from '../src/auth/cidr-index.js';
import { formatIPv6, parseCidr, parseIPv4, parseIPv6 } from '../src/auth/ip.js';

function groupsOf(text: string): number[] | null {
  const out = new Uint16Array(8);
  return parseIPv6(text, out) ? [...out] : null;
}

/** Values found, most specific network first, as nested arrays. */
function matches(index: CidrIndex, ip: string): number[][] {
  const out = createCidrMatches();
  const count = lookupCidr(index, ip, out);
  const groups: number[][] = [];
  for (let k = 0; k < count; k++) groups.push([...out.values.subarray(k === 0 ? 0 : out.groupEnds[k - 1], out.groupEnds[k])]);
  return groups;
}

describe('IP parsing', () => {
  it('parses IPv4 and refuses what is not exactly four octets', () => {
    assert.equal(parseIPv4('203.0.113.10'), 203 * 2 ** 24 + 113 * 256 + 10);
    assert.equal(parseIPv4('255.255.255.255'), 2 ** 32 - 1);
    assert.equal(parseIPv4('0.0.0.0'), 0);
    for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '1.2.3.4/33', '01.2.3.4', '1.2.3.4 ', ' 1.2.3.4', '1..2.3', 'a.b.c.d', '1.2.3.-4', 'a'.repeat(100_000)]) {
      assert.equal(parseIPv4(bad), -1, bad.slice(0, 20));
    }
  });

  it('parses IPv6 forms and refuses malformed ones', () => {
    assert.deepEqual(groupsOf('2001:db8::1'), [0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]);
    assert.deepEqual(groupsOf('::'), [0, 0, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(groupsOf('::1'), [0, 0, 0, 0, 0, 0, 0, 1]);
    assert.deepEqual(groupsOf('fe80::'), [0xfe80, 0, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(groupsOf('1:2:3:4:5:6:7:8'), [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.deepEqual(groupsOf('::ffff:192.0.2.1'), [0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0201]);
    assert.deepEqual(groupsOf('[2001:DB8::A]'), [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xa]);
    for (const bad of ['', ':', ':::', '::1::2', 'gggg::', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7::8', '12345::', 'fe80::1%eth0', '1:', ':1', '1::2:', '::1.2.3', 'a'.repeat(100_000)]) {
      assert.equal(groupsOf(bad), null, bad.slice(0, 20));
    }
  });

  it('formats IPv6 per RFC 5952', () => {
    const format = (text: string): string => formatIPv6(new Uint16Array(groupsOf(text)!));
    assert.equal(format('2001:0DB8:0000:0000:0000:0000:0000:0001'), '2001:db8::1');
    assert.equal(format('2001:db8:0:1:1:1:1:1'), '2001:db8:0:1:1:1:1:1'); // a single zero group stays
    assert.equal(format('2001:0:0:1:0:0:0:1'), '2001:0:0:1::1'); // the longest run
    assert.equal(format('2001:db8:0:0:1:0:0:1'), '2001:db8::1:0:0:1'); // the first on a tie
    assert.equal(format('::'), '::');
  });

  it('normalises CIDRs by clearing host bits', () => {
    assert.equal(parseCidr('10.1.2.3/8')?.canonical, '10.0.0.0/8');
    assert.equal(parseCidr('203.0.113.10')?.canonical, '203.0.113.10/32');
    assert.equal(parseCidr('2001:DB8::1/32')?.canonical, '2001:db8::/32');
    assert.equal(parseCidr('2001:db8:ffff::/33')?.canonical, '2001:db8:8000::/33');
    assert.equal(parseCidr('::ffff:1.2.3.4/128')?.family, 6);
    for (const bad of ['1.2.3.4/33', '1.2.3.4/', '1.2.3.4/08', '1.2.3.4/-1', '::/129', 'x/8', '1.2.3.4/8/8', '']) {
      assert.equal(parseCidr(bad), null, bad);
    }
  });
});

describe('CIDR index', () => {
  const builder = createCidrIndexBuilder();
  const added = [
    builder.add('10.0.0.0/8', 1),
    builder.add('10.1.0.0/16', 2),
    builder.add('10.1.2.0/24', 3),
    builder.add('10.1.2.3/32', 4),
    builder.add('10.1.2.3/32', 5),
    builder.add('0.0.0.0/0', 0),
    builder.add('2001:db8::/32', 11),
    builder.add('2001:db8:1::/48', 12),
    builder.add('2001:db8:1:2::/64', 13),
    builder.add('2001:db8:1:2::9/128', 14),
    builder.add('not a cidr', 99),
  ];
  const index = builder.build();

  it('refuses invalid networks at build time', () => {
    assert.deepEqual(added.slice(-1), [false]);
  });

  it('returns every matching network, most specific first, with all values of identical networks', () => {
    assert.deepEqual(matches(index, '10.1.2.3'), [[4, 5], [3], [2], [1], [0]]);
    assert.deepEqual(matches(index, '10.1.9.9'), [[2], [1], [0]]);
    assert.deepEqual(matches(index, '192.0.2.1'), [[0]]);
  });

  it('matches IPv6, and looks up IPv4-mapped sources as IPv4', () => {
    assert.deepEqual(matches(index, '2001:db8:1:2::9'), [[14], [13], [12], [11]]);
    assert.deepEqual(matches(index, '2001:db8:2::1'), [[11]]);
    assert.deepEqual(matches(index, '2001:db9::1'), []);
    assert.deepEqual(matches(index, '::ffff:10.1.2.3'), [[4, 5], [3], [2], [1], [0]]);
  });

  it('finds nothing for text that is not an address', () => {
    assert.deepEqual(matches(index, 'localhost'), []);
    assert.deepEqual(matches(index, ''), []);
  });

  it('agrees with a brute-force matcher on random networks and addresses', () => {
    let seed = 7;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const networks: { network: number; length: number; value: number }[] = [];
    const randomBuilder = createCidrIndexBuilder();
    for (let value = 0; value < 2000; value++) {
      const length = 8 + Math.floor(random() * 25);
      // Cluster in 10.0.0.0/12 so that networks nest.
      const address = (10 * 2 ** 24 + Math.floor(random() * 2 ** 20)) >>> 0;
      const mask = length === 0 ? 0 : (0xffffffff << (32 - length)) >>> 0;
      const network = (address & mask) >>> 0;
      networks.push({ network, length, value });
      randomBuilder.add(`${network >>> 24}.${(network >>> 16) & 255}.${(network >>> 8) & 255}.${network & 255}/${length}`, value);
    }
    const randomIndex = randomBuilder.build();
    for (let i = 0; i < 5000; i++) {
      const ip = (10 * 2 ** 24 + Math.floor(random() * 2 ** 20)) >>> 0;
      const expected = networks
        .filter(({ network, length }) => ((ip & ((0xffffffff << (32 - length)) >>> 0)) >>> 0) === network)
        .sort((a, b) => b.length - a.length || a.value - b.value);
      const byLength = new Map<number, number[]>();
      for (const entry of expected) byLength.set(entry.length, [...(byLength.get(entry.length) ?? []), entry.value]);
      const text = `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`;
      assert.deepEqual(
        matches(randomIndex, text).map((group) => [...group].sort((a, b) => a - b)),
        [...byLength.values()],
        text,
      );
    }
  });
});
