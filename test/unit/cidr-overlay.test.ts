import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createCidrIndexBuilder, type CidrIndex } from '../../src/core/net/cidr-index.js';
import { changeCidrIndex, cidrOverlaySize, type CidrChange } from '../../src/core/net/cidr-overlay.js';
import { cidrAnswer } from '../helpers/cidr.js';
import { mulberry32 as prng } from '../helpers/fuzz-requests.js';

function built(entries: readonly (readonly [string, number])[]): CidrIndex {
  const builder = createCidrIndexBuilder();
  for (const [cidr, value] of entries) builder.add(cidr, value);
  return builder.build();
}

/**
 * Networks from a small space, so they nest and repeat: IPv4 under 10.0.0.0/22, IPv6 under 2001:db8::/46,
 * prefix lengths from short to host routes.
 */
function randomNetwork(random: () => number): string {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)];
  if (random() < 0.6) return `10.0.${Math.floor(random() * 4)}.${Math.floor(random() * 256)}/${pick([8, 16, 22, 23, 24, 26, 30, 32])}`;
  const low = Math.floor(random() * 4).toString(16);
  return `2001:db8:${low}::${Math.floor(random() * 65536).toString(16)}/${pick([32, 46, 47, 48, 64, 112, 127, 128])}`;
}

/** Addresses inside the networks' space (both families, and IPv4-mapped IPv6), and a few outside it. */
function probes(random: () => number): string[] {
  const list = ['192.0.2.1', '2001:db9::1', '::ffff:10.0.1.7', '10.0.3.255', '2001:db8::'];
  for (let i = 0; i < 150; i++) list.push(`10.0.${Math.floor(random() * 4)}.${Math.floor(random() * 256)}`);
  for (let i = 0; i < 150; i++)
    list.push(`2001:db8:${Math.floor(random() * 4).toString(16)}::${Math.floor(random() * 65536).toString(16)}`);
  return list;
}

describe('CIDR index overlay (live changes)', () => {
  it('answers as an index built from scratch of the same networks, after every change of many random ones', () => {
    for (const seed of [1, 2, 3]) {
      const random = prng(seed);
      const entries: [string, number][] = [];
      for (let i = 0; i < 300; i++) entries.push([randomNetwork(random), Math.floor(random() * 20)]);
      const ips = probes(random);
      let index = built(entries);
      for (let step = 0; step < 60; step++) {
        // A batch of a few adds and removes, as one live apply brings (a trunk's CIDRs, one row moved).
        const changes: CidrChange[] = [];
        for (let k = Math.floor(random() * 5); k >= 0; k--) {
          if (entries.length > 0 && random() < 0.5) {
            const [cidr, value] = entries.splice(Math.floor(random() * entries.length), 1)[0];
            changes.push({ cidr, value, count: -1 });
          } else {
            // Re-adding a network as it was once written, or anew (duplicates included).
            const entry: [string, number] = [randomNetwork(random), Math.floor(random() * 20)];
            entries.push(entry);
            changes.push({ cidr: entry[0], value: entry[1], count: 1 });
          }
        }
        const previous = index;
        const before = structuredClone(previous);
        const answersBefore = ips.map((ip) => cidrAnswer(previous, ip));
        const changed = changeCidrIndex(previous, changes);
        assert.ok(changed !== null, `seed ${seed} step ${step}: a removal of a held network was refused`);
        index = changed;
        const scratch = built(entries);
        for (const ip of ips) assert.deepEqual(cidrAnswer(index, ip), cidrAnswer(scratch, ip), `seed ${seed} step ${step}: ${ip}`);
        assert.deepEqual(previous, before, 'the index changed from is left as it was');
        assert.deepEqual(
          ips.map((ip) => cidrAnswer(previous, ip)),
          answersBefore,
        );
        assert.equal(index.v4, previous.v4, 'the built tries are shared, not copied');
      }
    }
  });

  it('takes out one of two identical entries, and only the one asked', () => {
    const index = built([
      ['10.0.0.0/24', 3],
      ['10.0.0.0/24', 3],
      ['10.0.0.0/24', 4],
      ['10.0.0.7/32', 3],
    ]);
    const once = changeCidrIndex(index, [{ cidr: '10.0.0.9/24', value: 3, count: -1 }])!;
    assert.deepEqual(cidrAnswer(once, '10.0.0.7'), [[3], [3, 4]]);
    const twice = changeCidrIndex(once, [{ cidr: '10.0.0.0/24', value: 3, count: -1 }])!;
    assert.deepEqual(cidrAnswer(twice, '10.0.0.8'), [[4]]);
    const gone = changeCidrIndex(twice, [{ cidr: '10.0.0.0/24', value: 4, count: -1 }])!;
    assert.deepEqual(cidrAnswer(gone, '10.0.0.8'), [], 'a network left with no value is not reported');
    assert.deepEqual(cidrAnswer(gone, '10.0.0.7'), [[3]]);
  });

  it('refuses to take out what the index does not hold', () => {
    const index = built([['2001:db8::/32', 1]]);
    assert.equal(changeCidrIndex(index, [{ cidr: '2001:db8::/32', value: 2, count: -1 }]), null);
    assert.equal(changeCidrIndex(index, [{ cidr: '2001:db8::/48', value: 1, count: -1 }]), null);
    assert.equal(
      changeCidrIndex(index, [
        { cidr: '2001:db8::/32', value: 1, count: -1 },
        { cidr: '2001:db8::/32', value: 1, count: -1 },
      ]),
      null,
    );
  });

  it('drops the overlay when the changes cancel out, and counts what it holds', () => {
    const index = built([['10.1.0.0/16', 1]]);
    const added = changeCidrIndex(index, [
      { cidr: '10.2.0.0/16', value: 1, count: 1 },
      { cidr: '10.1.0.0/16', value: 1, count: -1 },
    ])!;
    assert.equal(cidrOverlaySize(added), 2);
    const back = changeCidrIndex(added, [
      { cidr: '10.2.0.0/16', value: 1, count: -1 },
      { cidr: '10.1.0.0/16', value: 1, count: 1 },
    ])!;
    assert.equal(back.overlay, undefined);
    assert.deepEqual(cidrAnswer(back, '10.1.2.3'), [[1]]);
  });
});
