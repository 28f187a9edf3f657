import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * A node's credential with the centre. The centre issues each node a random secret (32 bytes, base64url)
 * and keeps only its SHA-256: the secret carries 256 bits of chance, so a slow password hash would buy
 * nothing and cost every money round CPU. The node sends the secret as `Authorization: Bearer` on every
 * money round.
 *
 * Snapshot pushes go the other way, so the centre must present something the node can check without
 * keeping the secret itself: a push token, HMAC-SHA256 of a fixed label under the secret. The node computes
 * it from its secret; the centre keeps it from the moment it issued the secret. Whoever reads the centre's
 * database can then push snapshots to that node, but cannot send its money rounds.
 */
const PUSH_LABEL = 'opensips-decision-engine snapshot push v1';

export function newNodeSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** What the centre stores to recognise a secret (hex SHA-256). */
export function secretDigest(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** The bearer the centre sends on snapshot pushes to the node holding `secret`. */
export function snapshotPushToken(secret: string): string {
  return createHmac('sha256', secret).update(PUSH_LABEL, 'utf8').digest('base64url');
}

/**
 * Equal strings, in time that does not depend on where they first differ: both sides are hashed first, so
 * the compare runs over equal lengths whatever was sent.
 */
export function sameSecret(presented: string, expected: string): boolean {
  const a = createHash('sha256').update(presented, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}

/** Does `presented` hash to the stored digest (hex SHA-256)? Timing-safe. */
export function matchesDigest(presented: string, digest: string): boolean {
  const a = createHash('sha256').update(presented, 'utf8').digest();
  const b = Buffer.from(digest, 'hex');
  return b.length === a.length && timingSafeEqual(a, b);
}
