import { newNodeSecret, secretDigest, snapshotPushToken } from '../../src/core/protocol/node-credential.js';
import type { ConfigStore } from './config-store.js';

/**
 * Issuing nodes their credentials (src/core/protocol/node-credential.ts): a new node gets one in its create
 * answer, and `POST /api/opensips-nodes/{id}/rotate-secret` replaces it. The secret is answered once and
 * never stored; `node_credentials` keeps its SHA-256 and the push token derived from it.
 *
 * Rotation keeps the previous secret working until the node first sends a round with the new one (the
 * ledger then forgets the previous: sync/ledger/settlement.ts), so a node is never cut off between the
 * operator rotating and the node's secret file changing. `keepPrevious: false` refuses the old one at once
 * (a leaked secret).
 */
export const NODE_CREDENTIALS_TABLE = 'node_credentials';

export interface IssuedSecret {
  /** Answered to the operator once; only its hash is kept. */
  secret: string;
  /** Whether the node's previous secret is still accepted until it uses this one. */
  previousAccepted: boolean;
}

/** Issues a node a new secret, keeping the current one as the previous when `keepPrevious` (and there is one). */
export async function issueNodeSecret(store: ConfigStore, nodeId: number, keepPrevious: boolean): Promise<IssuedSecret> {
  const secret = newNodeSecret();
  const current = await store.get(NODE_CREDENTIALS_TABLE, nodeId);
  const values = {
    secret_hash: secretDigest(secret),
    push_token: snapshotPushToken(secret),
    previous_secret_hash: keepPrevious && current !== null ? current.secret_hash : null,
    previous_push_token: keepPrevious && current !== null ? current.push_token : null,
    issued_at: new Date().toISOString(),
  };
  if (current === null) await store.insert(NODE_CREDENTIALS_TABLE, { id: nodeId, ...values });
  else await store.update(NODE_CREDENTIALS_TABLE, nodeId, values);
  return { secret, previousAccepted: values.previous_secret_hash !== null };
}

/** The bearer tokens a snapshot push to this node may carry, the current one first; none before a secret is issued. */
export async function pushTokens(store: ConfigStore, nodeId: number): Promise<string[]> {
  const row = await store.get(NODE_CREDENTIALS_TABLE, nodeId);
  if (row === null) return [];
  return [row.push_token as string, ...(row.previous_push_token === null ? [] : [row.previous_push_token as string])];
}
