import type { KeyLike } from 'jose';

/**
 * Tokens whose signature and claims were verified, remembered so that the partner app's next request with the
 * same token skips the RS256 verification (~170 µs of the control plane's CPU per request, half of a
 * get_balance): a partner's app sends one ID token for up to its hour.
 *
 * Keyed by the exact token string, so a token differing in any character (a tampered payload or signature) is
 * never found here and is verified in full. An entry is kept no longer than the token's `exp` plus the clock
 * leeway, and the authenticator uses it only while the token's `kid` still resolves to the very key that
 * verified it (the set asked again whenever its content may have changed). Bounded: at `capacity` the entry
 * used least recently makes room.
 */
export interface VerifiedToken<Identity> {
  identity: Identity;
  /** `exp` and `nbf` in seconds since the epoch, checked again on every use. */
  exp: number;
  nbf: number | null;
  /** The header the key was chosen by, to ask the key set again, and the key it gave. */
  header: { alg: string; kid?: string };
  key: KeyLike | Uint8Array;
  /** The key set's content (PartnerAuthenticator's version) that last gave `key` for `header`; null: ask it again. */
  keySet: number | null;
}

export class VerifiedTokens<Identity> {
  private readonly entries = new Map<string, VerifiedToken<Identity>>();

  constructor(
    readonly capacity: number,
    private readonly leewaySeconds: number,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** The entry for `token` if its exp and nbf still hold at `nowSeconds` (with the leeway); else dropped. */
  find(token: string, nowSeconds: number): VerifiedToken<Identity> | null {
    const entry = this.entries.get(token);
    if (entry === undefined) return null;
    if (!this.timely(entry, nowSeconds)) {
      this.entries.delete(token);
      return null;
    }
    // Map keeps insertion order: moved to the end, the entry is now the most recently used.
    this.entries.delete(token);
    this.entries.set(token, entry);
    return entry;
  }

  forget(token: string): void {
    this.entries.delete(token);
  }

  remember(token: string, entry: VerifiedToken<Identity>): void {
    this.entries.delete(token);
    while (this.entries.size >= this.capacity) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(token, entry);
  }

  private timely(entry: VerifiedToken<Identity>, nowSeconds: number): boolean {
    return nowSeconds < entry.exp + this.leewaySeconds && (entry.nbf === null || entry.nbf <= nowSeconds + this.leewaySeconds);
  }
}
