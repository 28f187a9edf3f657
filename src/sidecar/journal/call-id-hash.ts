/**
 * FNV-1a over a Call-ID's characters, then murmur3's finaliser so that
 * Call-IDs differing in one digit spread over a table. `seed` replaces FNV's
 * offset basis: two seeds give the two hashes a Bloom filter needs.
 */
export const FNV_OFFSET_BASIS = 0x811c9dc5;

export function hashCallId(key: string, seed = FNV_OFFSET_BASIS): number {
  let h = seed;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}
