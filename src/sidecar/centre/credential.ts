import { readFileSync, statSync } from 'node:fs';
import { bearerToken } from '../../core/http/bearer.js';
import { sameSecret, snapshotPushToken } from '../../core/protocol/node-credential.js';

/**
 * This node's secret with the centre (src/core/protocol/node-credential.ts): sent as a Bearer on every money
 * round, and what a snapshot push must prove knowledge of. From `--centre-secret-file` (preferred: the
 * secret stays out of the process table and the environment) or `CENTRE_SECRET`.
 *
 * The file is read again when it changes (checked at most once a second), so a rotation needs no restart:
 * the operator writes the new secret over the file, the next round carries it, and the centre forgets the
 * old one from that round on.
 */
export type CentreSecretSource = { file: string } | { value: string };

const RECHECK_MS = 1000;

export class CentreCredential {
  private current: string;
  private pushToken: string;
  private fileStamp = '';
  private checkedAt = 0;

  constructor(private readonly source: CentreSecretSource) {
    this.current = 'value' in source ? checked(source.value, 'CENTRE_SECRET') : this.readFile(source.file);
    this.pushToken = snapshotPushToken(this.current);
  }

  /** The secret for the next round (re-read from the file when it has changed). */
  secret(now = Date.now()): string {
    if ('file' in this.source && now - this.checkedAt >= RECHECK_MS) {
      this.checkedAt = now;
      try {
        const stamp = fileStamp(this.source.file);
        if (stamp !== this.fileStamp) {
          this.current = this.readFile(this.source.file);
          this.pushToken = snapshotPushToken(this.current);
        }
      } catch {
        // A file being replaced, or emptied by mistake: keep the secret in use rather than none.
      }
    }
    return this.current;
  }

  /** The value for a round's Authorization header. */
  authorization(): string {
    return `Bearer ${this.secret()}`;
  }

  /** Does a snapshot push's Authorization header carry the centre's push token for this node? */
  admitsPush(authorization: string | undefined): boolean {
    this.secret();
    const presented = bearerToken(authorization);
    return presented !== null && sameSecret(presented, this.pushToken);
  }

  private readFile(path: string): string {
    const stamp = fileStamp(path);
    const secret = checked(readFileSync(path, 'utf8').trim(), `--centre-secret-file ${path}`);
    this.fileStamp = stamp;
    return secret;
  }
}

function fileStamp(path: string): string {
  const stat = statSync(path);
  return `${stat.mtimeMs}:${stat.size}:${stat.ino}`;
}

/** A secret the centre issued is 43 base64url characters; anything else is a mistake worth stopping for. */
function checked(secret: string, where: string): string {
  if (!/^[A-Za-z0-9_-]{32,512}$/.test(secret)) throw new Error(`${where} does not hold a node secret (base64url, as the centre issued it)`);
  return secret;
}
