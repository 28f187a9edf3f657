import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createCidrIndexBuilder, createCidrMatches, lookupCidr, type CidrIndex } from '../../src/core/net/cidr-index.js';
import {
  addressGroups,
  cidrContains,
  cidrsOverlap,
  formatIPv4,
  formatIPv6,
  parseCidr,
  parseIPv4,
  parseIPv6,
} from '../../src/core/net/ip.js';

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

/** mulberry32: a seeded PRNG, so a failing random case reproduces. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** Brute-force reference: values (= positions) of the networks that match, grouped by prefix length, longest first. */
function byLengthDescending<T extends { length: number }>(networks: T[], matchesIp: (network: T) => boolean): number[][] {
  const groups = new Map<number, number[]>();
  networks.forEach((network, value) => {
    if (matchesIp(network)) groups.set(network.length, [...(groups.get(network.length) ?? []), value]);
  });
  return [...groups.entries()].sort((a, b) => b[0] - a[0]).map(([, values]) => values);
}

const hostile = [
  '',
  ' ',
  '.',
  ':',
  '1.2.3.4 ',
  ' 1.2.3.4',
  '1.2.3.4\n',
  '1.2.3.4%eth0',
  'a'.repeat(100_000),
  '1.'.repeat(50_000),
  ':'.repeat(100_000),
  '\u0661.2.3.4',
];

describe('IP parsing', () => {
  it('parses IPv4 and refuses what is not exactly four plain decimal octets', () => {
    assert.equal(parseIPv4('203.0.113.10'), 203 * 2 ** 24 + 113 * 256 + 10);
    assert.equal(parseIPv4('255.255.255.255'), 2 ** 32 - 1);
    assert.equal(parseIPv4('0.0.0.0'), 0);
    assert.equal(parseIPv4('10.0.100.0'), 10 * 2 ** 24 + 100 * 256);
    const bad = [
      '1.2.3',
      '1.2.3.4.5',
      '256.1.1.1',
      '1.2.3.256',
      '1.2.3.4/33',
      '01.2.3.4',
      '1.2.3.00',
      '1..2.3',
      '1.2.3.',
      '.1.2.3',
      'a.b.c.d',
      '1.2.3.-4',
      '+1.2.3.4',
      '1.2.3.4444',
      '::1',
    ];
    for (const text of [...bad, ...hostile]) assert.equal(parseIPv4(text), -1, JSON.stringify(text.slice(0, 20)));
  });

  it('parses IPv6 forms', () => {
    assert.deepEqual(groupsOf('2001:db8::1'), [0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]);
    assert.deepEqual(groupsOf('::'), [0, 0, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(groupsOf('::1'), [0, 0, 0, 0, 0, 0, 0, 1]);
    assert.deepEqual(groupsOf('fe80::'), [0xfe80, 0, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(groupsOf('1:2:3:4:5:6:7:8'), [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.deepEqual(groupsOf('1:2:3:4:5:6:7::'), [1, 2, 3, 4, 5, 6, 7, 0]);
    assert.deepEqual(groupsOf('::2:3:4:5:6:7:8'), [0, 2, 3, 4, 5, 6, 7, 8]);
    assert.deepEqual(groupsOf('2001:0DB8:00aB:0000:0000:0000:0000:0001'), [0x2001, 0xdb8, 0xab, 0, 0, 0, 0, 1]);
    assert.deepEqual(groupsOf('::ffff:192.0.2.1'), [0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0201]);
    assert.deepEqual(groupsOf('1:2:3:4:5:6:1.2.3.4'), [1, 2, 3, 4, 5, 6, 0x0102, 0x0304]);
    assert.deepEqual(groupsOf('[2001:DB8::A]'), [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xa]);
    assert.deepEqual(groupsOf('[::]'), [0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('refuses malformed IPv6', () => {
    const bad = [
      ':::',
      '::1::2',
      'gggg::',
      '1:2:3:4:5:6:7:8:9',
      '1:2:3:4:5:6:7::8',
      '::1:2:3:4:5:6:7:8',
      '12345::',
      '1:2:3:4:5:6:7',
      'fe80::1%eth0',
      '1:',
      ':1',
      '1::2:',
      '1:::2',
      '::1.2.3',
      '::1.2.3.4:5',
      '1:2:3:4:5:6:7:1.2.3.4',
      '::ffff:01.2.3.4',
      '[::1',
      '::1]',
      '[]',
      '[[::1]]',
      '1.2.3.4',
    ];
    for (const text of [...bad, ...hostile]) assert.equal(groupsOf(text), null, JSON.stringify(text.slice(0, 20)));
  });

  it('formats IPv4 and IPv6 (RFC 5952)', () => {
    assert.equal(formatIPv4(0), '0.0.0.0');
    assert.equal(formatIPv4(2 ** 32 - 1), '255.255.255.255');
    assert.equal(formatIPv4(parseIPv4('203.0.113.10')), '203.0.113.10');
    const format = (text: string): string => formatIPv6(new Uint16Array(groupsOf(text)!));
    assert.equal(format('2001:0DB8:0000:0000:0000:0000:0000:0001'), '2001:db8::1');
    assert.equal(format('2001:db8:0:1:1:1:1:1'), '2001:db8:0:1:1:1:1:1'); // a single zero group stays
    assert.equal(format('2001:0:0:1:0:0:0:1'), '2001:0:0:1::1'); // the longest run
    assert.equal(format('2001:db8:0:0:1:0:0:1'), '2001:db8::1:0:0:1'); // the first on a tie
    assert.equal(format('::'), '::');
    assert.equal(format('::1'), '::1');
    assert.equal(format('1::'), '1::');
    assert.equal(format('ABCD:EF01:2345:6789:ABCD:EF01:2345:6789'), 'abcd:ef01:2345:6789:abcd:ef01:2345:6789');
    assert.equal(format('::ffff:c000:201'), '::ffff:192.0.2.1'); // section 5: IPv4-mapped keeps its IPv4 tail
  });

  it('normalises CIDRs by clearing host bits', () => {
    assert.equal(parseCidr('10.1.2.3/8')?.canonical, '10.0.0.0/8');
    assert.equal(parseCidr('203.0.113.10')?.canonical, '203.0.113.10/32');
    assert.equal(parseCidr('255.255.255.255/0')?.canonical, '0.0.0.0/0');
    assert.equal(parseCidr('10.255.255.255/31')?.canonical, '10.255.255.254/31');
    assert.equal(parseCidr('2001:DB8::1/32')?.canonical, '2001:db8::/32');
    assert.equal(parseCidr('2001:db8:ffff::/33')?.canonical, '2001:db8:8000::/33');
    assert.equal(parseCidr('::1')?.canonical, '::1/128');
    assert.equal(parseCidr('ffff::/0')?.canonical, '::/0');
    const mapped = parseCidr('::FFFF:1.2.3.4/128');
    assert.equal(mapped?.family, 6); // stays IPv6, not silently turned into 1.2.3.4/32
    assert.equal(mapped.canonical, '::ffff:1.2.3.4/128');
    assert.equal(parseCidr('::ffff:1.2.3.4/96')?.canonical, '::ffff:0.0.0.0/96');
    const bad = [
      '1.2.3.4/33',
      '1.2.3.4/',
      '1.2.3.4/08',
      '1.2.3.4/00',
      '1.2.3.4/-1',
      '1.2.3.4/+8',
      '1.2.3.4/8 ',
      '1.2.3.4/1000',
      '::/129',
      '::/0128',
      'x/8',
      '/8',
      '1.2.3.4/8/8',
      '[::1]/128',
      '01.2.3.4/8',
    ];
    for (const text of [...bad, ...hostile]) assert.equal(parseCidr(text), null, JSON.stringify(text.slice(0, 20)));
  });

  it('says whether a network holds an address: IPv4 networks hold IPv4-mapped addresses, never other IPv6', () => {
    const holds = (network: string, address: string): boolean => cidrContains(parseCidr(network)!, addressGroups(address)!);
    assert.equal(holds('10.0.0.0/8', '10.200.1.1'), true);
    assert.equal(holds('10.0.0.0/8', '11.0.0.1'), false);
    assert.equal(holds('10.0.0.0/8', '::ffff:10.0.0.1'), true);
    assert.equal(holds('0.0.0.0/0', '203.0.113.9'), true);
    assert.equal(holds('0.0.0.0/0', '2001:db8::1'), false);
    assert.equal(holds('203.0.113.10/32', '203.0.113.10'), true);
    assert.equal(holds('203.0.113.10/32', '203.0.113.11'), false);
    assert.equal(holds('2001:db8::/33', '2001:db8:7fff::1'), true);
    assert.equal(holds('2001:db8::/33', '2001:db8:8000::1'), false);
    assert.equal(holds('::/0', '10.0.0.1'), true); // as the mapped address it is
    assert.equal(addressGroups('10.0.0.1/8'), null);
    assert.equal(addressGroups('not an address'), null);
  });

  it('says whether two networks share an address, either way round and across the IPv4-mapped form', () => {
    const overlap = (a: string, b: string): boolean => cidrsOverlap(parseCidr(a)!, parseCidr(b)!);
    const pairs: [string, string, boolean][] = [
      ['203.0.113.7/32', '203.0.113.7', true],
      ['203.0.113.0/24', '203.0.113.7/32', true], // around
      ['203.0.113.128/25', '203.0.113.0/24', true], // inside
      ['203.0.113.0/25', '203.0.113.128/25', false], // side by side
      ['198.51.100.0/24', '203.0.113.0/24', false],
      ['0.0.0.0/0', '192.0.2.1', true],
      ['::ffff:203.0.113.7', '203.0.113.0/24', true],
      ['::ffff:203.0.113.0/120', '203.0.113.200/29', true],
      ['::ffff:198.51.100.0/120', '203.0.113.0/24', false],
      ['::/0', '203.0.113.7', true],
      ['2001:db8::/32', '203.0.113.0/24', false],
      ['2001:db8::/32', '2001:db8:1::1', true],
      ['2001:db8::/33', '2001:db8:8000::/33', false],
    ];
    for (const [a, b, expected] of pairs) {
      assert.equal(overlap(a, b), expected, `${a} ${b}`);
      assert.equal(overlap(b, a), expected, `${b} ${a}`);
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
    builder.add('10.1.2.3', 5), // a bare address is the same /32
    builder.add('0.0.0.0/0', 0),
    builder.add('2001:db8::/32', 11),
    builder.add('2001:db8:1::/48', 12),
    builder.add('2001:db8:1:2::/64', 13),
    builder.add('2001:db8:1:2::9/128', 14),
    builder.add('2001:db8:1:2::9/128', 15),
    builder.add('::/0', 10),
    builder.add('not a cidr', 99),
    builder.add('10.0.0.0/33', 99),
  ];
  const index = builder.build();

  it('refuses invalid networks and values', () => {
    assert.deepEqual(added.slice(-3), [true, false, false]);
    for (const value of [-1, 1.5, 2 ** 31, Number.NaN]) assert.throws(() => createCidrIndexBuilder().add('10.0.0.0/8', value), RangeError);
  });

  it('returns every matching network, most specific first, with all values of identical networks', () => {
    assert.deepEqual(matches(index, '10.1.2.3'), [[4, 5], [3], [2], [1], [0]]);
    assert.deepEqual(matches(index, '10.1.2.4'), [[3], [2], [1], [0]]);
    assert.deepEqual(matches(index, '10.1.9.9'), [[2], [1], [0]]);
    assert.deepEqual(matches(index, '10.200.0.1'), [[1], [0]]);
    assert.deepEqual(matches(index, '192.0.2.1'), [[0]]); // only the default
  });

  it('matches IPv6 the same way, with its own default', () => {
    assert.deepEqual(matches(index, '2001:db8:1:2::9'), [[14, 15], [13], [12], [11], [10]]);
    assert.deepEqual(matches(index, '[2001:DB8:1:2:0:0:0:9]'), [[14, 15], [13], [12], [11], [10]]);
    assert.deepEqual(matches(index, '2001:db8:1:2::8'), [[13], [12], [11], [10]]);
    assert.deepEqual(matches(index, '2001:db8:2::1'), [[11], [10]]);
    assert.deepEqual(matches(index, 'fe80::1'), [[10]]);
  });

  it('looks up IPv4-mapped IPv6 sources as IPv4', () => {
    assert.deepEqual(matches(index, '::ffff:10.1.2.3'), [[4, 5], [3], [2], [1], [0]]);
    assert.deepEqual(matches(index, '::ffff:a01:203'), [[4, 5], [3], [2], [1], [0]]);
    assert.deepEqual(matches(index, '[::ffff:192.0.2.1]'), [[0]]);
  });

  it('finds nothing without a matching network or without an address', () => {
    const noDefaults = createCidrIndexBuilder();
    noDefaults.add('10.0.0.0/8', 1);
    noDefaults.add('2001:db8::/32', 2);
    const small = noDefaults.build();
    assert.deepEqual(matches(small, '11.0.0.1'), []);
    assert.deepEqual(matches(small, '2001:db9::1'), []);
    assert.deepEqual(matches(small, '::ffff:11.0.0.1'), []);
    assert.deepEqual(matches(createCidrIndexBuilder().build(), '10.0.0.1'), []);
    for (const text of ['localhost', '10.0.0.0/8', '10.1.2.3 ', 'fe80::1%eth0', ...hostile])
      assert.deepEqual(matches(index, text), [], JSON.stringify(text.slice(0, 20)));
  });

  it('reuses one matches struct across lookups and grows it when one path holds many values', () => {
    const many = createCidrIndexBuilder();
    for (let value = 0; value < 1000; value++) many.add(value % 2 === 0 ? '10.0.0.0/8' : '10.0.0.0/24', value);
    const out = createCidrMatches();
    assert.equal(lookupCidr(many.build(), '10.0.0.1', out), 2);
    assert.equal(out.groupEnds[0], 500);
    assert.equal(out.groupEnds[1], 1000);
    assert.equal(out.values[0], 1);
    assert.equal(out.values[500], 0);
    assert.equal(lookupCidr(index, '10.1.9.9', out), 3);
    assert.deepEqual([...out.values.subarray(0, out.groupEnds[2])], [2, 1, 0]);
  });

  it('survives structuredClone (it crosses worker threads) and still answers', () => {
    const cloned = structuredClone(index);
    assert.deepEqual(matches(cloned, '10.1.2.3'), [[4, 5], [3], [2], [1], [0]]);
    assert.deepEqual(matches(cloned, '2001:db8:1:2::9'), [[14, 15], [13], [12], [11], [10]]);
  });

  it('keeps every value of 100k networks (build time is measured in bench/, not asserted here)', () => {
    const random = prng(1);
    const big = createCidrIndexBuilder();
    for (let value = 0; value < 100_000; value++) {
      const length = 24 + Math.floor(random() * 9);
      big.add(`${formatIPv4(Math.floor(random() * 2 ** 32))}/${length}`, value);
    }
    const built = big.build();
    assert.equal(built.v4.values.length, 100_000);
  });

  it('agrees with a brute-force IPv4 matcher on random networks and addresses', () => {
    const random = prng(7);
    // Clustered in 10.0.0.0/12 so that networks nest and collide.
    const randomAddress = (): number => 10 * 2 ** 24 + Math.floor(random() * 2 ** 20);
    const maskOf = (length: number): number => (length === 0 ? 0 : (0xffffffff << (32 - length)) >>> 0);
    const networks: { network: number; length: number }[] = [];
    const randomBuilder = createCidrIndexBuilder();
    for (let value = 0; value < 2000; value++) {
      const length = value < 5 ? value : 8 + Math.floor(random() * 25);
      const address = randomAddress();
      networks.push({ network: (address & maskOf(length)) >>> 0, length });
      assert.ok(randomBuilder.add(`${formatIPv4(address)}/${length}`, value)); // host bits left set on purpose
    }
    const randomIndex = randomBuilder.build();
    for (let i = 0; i < 5000; i++) {
      const ip = randomAddress();
      const expected = byLengthDescending(networks, (n) => (ip & maskOf(n.length)) >>> 0 === n.network);
      assert.deepEqual(matches(randomIndex, formatIPv4(ip)), expected, formatIPv4(ip));
    }
  });

  it('agrees with a brute-force IPv6 matcher on random networks and addresses', () => {
    const random = prng(11);
    // 2001:db8:: plus groups often 0 or 1, so that networks nest and collide.
    const randomGroups = (): number[] => [
      0x2001,
      0xdb8,
      ...Array.from({ length: 6 }, () => (random() < 0.6 ? Math.floor(random() * 2) : Math.floor(random() * 65536))),
    ];
    const toBig = (groups: number[]): bigint => groups.reduce((sum, g) => (sum << 16n) | BigInt(g), 0n);
    const maskOf = (length: number): bigint => ((1n << 128n) - 1n) ^ ((1n << BigInt(128 - length)) - 1n);
    const networks: { network: bigint; length: number }[] = [];
    const randomBuilder = createCidrIndexBuilder();
    for (let value = 0; value < 2000; value++) {
      const length = value < 5 ? value : 32 + Math.floor(random() * 97);
      const groups = randomGroups();
      networks.push({ network: toBig(groups) & maskOf(length), length });
      assert.ok(randomBuilder.add(`${groups.map((g) => g.toString(16)).join(':')}/${length}`, value));
    }
    const randomIndex = randomBuilder.build();
    for (let i = 0; i < 5000; i++) {
      // Half the addresses sit inside a known network, so deep matches are common.
      let groups = randomGroups();
      if (i % 2 === 0) {
        const n = networks[Math.floor(random() * networks.length)];
        const host = toBig(groups) & ~maskOf(n.length);
        const big = n.network | host;
        groups = Array.from({ length: 8 }, (_, k) => Number((big >> BigInt(112 - 16 * k)) & 0xffffn));
      }
      const ip = toBig(groups);
      const expected = byLengthDescending(networks, (n) => (ip & maskOf(n.length)) === n.network);
      const text = formatIPv6(new Uint16Array(groups));
      assert.deepEqual(matches(randomIndex, text), expected, text);
    }
  });
});
