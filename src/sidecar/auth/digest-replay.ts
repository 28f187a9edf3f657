import type { DigestCredentials } from '../../core/digest/digest.js';

/**
 * Digest credentials are good for one request. OpenSIPS cannot hold them to that here: its one-use nonce
 * check (auth module, post_auth) runs only after the response verified against the password it was
 * given, and the script gives pv_*_authorize a placeholder (the sidecar holds the HA1s), so that check
 * never runs; only the nonce's own expiry and signature are checked. Without this guard a Proxy-Authorization
 * or Authorization header seen on the wire could be sent again for `nonce_expire` seconds: calls billed to
 * the trunk it belongs to, or its registration taken over.
 *
 * A credential is remembered by its response, which hashes the nonce, nc, cnonce, method and URI: a
 * replay repeats it exactly, while the UA's own next request with the same nonce (qop with the next nc)
 * has a response of its own and passes. Remembered only once it verified, so nothing unverified spends
 * an entry or can burn a real UA's credential before it arrives.
 */

/**
 * How long a used credential is remembered: at least OpenSIPS's nonce_expire (30 s in the script; the
 * opensips-config test holds the two together), past which OpenSIPS itself refuses the nonce as stale.
 */
export const CREDENTIAL_MEMORY_MS = 300_000;
/**
 * At most this many remembered at once (about 20 MB): past it the oldest goes first. Only verified
 * credentials enter, so filling it takes 333 verified digests a second for five minutes on one node.
 */
export const CREDENTIAL_MEMORY_ENTRIES = 100_000;

export class DigestReplayGuard {
  /** Key → when it may be forgotten; a Map keeps insertion order, which is time order, so the oldest are first. */
  private readonly used = new Map<string, number>();

  constructor(
    private readonly memoryMs = CREDENTIAL_MEMORY_MS,
    private readonly maxEntries = CREDENTIAL_MEMORY_ENTRIES,
  ) {}

  /** True the first time these (verified) credentials are presented; false for any later presentation while remembered. */
  firstUse(credentials: DigestCredentials, now: number): boolean {
    this.forget(now);
    // The realm's case does not matter to the check (register-auth compares it case-insensitively).
    const key = `${credentials.username}\0${credentials.realm.toLowerCase()}\0${credentials.response.toLowerCase()}`;
    if (this.used.has(key)) return false;
    if (this.used.size >= this.maxEntries) this.used.delete(this.used.keys().next().value!);
    this.used.set(key, now + this.memoryMs);
    return true;
  }

  /** Credentials remembered now (for tests). */
  get size(): number {
    return this.used.size;
  }

  private forget(now: number): void {
    for (const [key, until] of this.used) {
      if (until > now) return;
      this.used.delete(key);
    }
  }
}
