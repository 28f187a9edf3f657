import { bearerToken } from '../../src/core/http/bearer.js';
import { matchesDigest } from '../../src/core/protocol/node-credential.js';
import { NodeSyncRefusal } from './settlement.js';
import type { Steps } from './sql-steps.js';
import type { LedgerSteps } from './steps.js';
import type { NodeCredentialDigests } from './store.js';

/**
 * A money round is the node's own only when it carries the secret the centre issued that node
 * (`Authorization: Bearer`, checked against the stored SHA-256 in time that does not depend on the
 * secret). Checked in the round's transaction before anything is read for settling, so a refused round
 * changes nothing, not even the node's last round number. A node with no secret issued is refused too: an
 * unauthenticated node would be anyone on an `auth_ips` host.
 *
 * During a rotation the previous secret is accepted until the node first presents the new one; from that
 * round on the previous is forgotten.
 */
export function* authenticateRound(
  tx: LedgerSteps,
  node: string,
  authorization: string | undefined,
  credential: NodeCredentialDigests | null,
): Steps<void> {
  const { nodeId, current, previousKept } = checkNodeSecret(credential, node, authorization);
  if (current && previousKept) yield* tx.forgetPreviousSecret(nodeId);
}

/**
 * Whether a request carries the node's secret (current or, during a rotation, previous), read-only: the
 * money round above forgets the previous one; other node requests (the delta channel, sync/deltas/) only ask.
 */
export function* authenticateNode(
  tx: LedgerSteps,
  node: string,
  authorization: string | undefined,
): Steps<{ nodeId: number; current: boolean; previousKept: boolean }> {
  return checkNodeSecret(yield* tx.nodeCredential(node), node, authorization);
}

/** authenticateNode on the node's credential as read (the money round reads it with the round's other opening reads). */
function checkNodeSecret(
  credential: NodeCredentialDigests | null,
  node: string,
  authorization: string | undefined,
): { nodeId: number; current: boolean; previousKept: boolean } {
  if (credential === null) throw new NodeSyncRefusal('unknown_node', `node ${node} is not registered in opensips_nodes`);
  const presented = bearerToken(authorization);
  const refused = new NodeSyncRefusal('node_unauthenticated', `the request does not carry node ${node}'s secret`);
  if (presented === null || credential.secretHash === null) throw refused;
  // Both compares run whichever matches, so the answer's timing says nothing about which secret it was.
  const current = matchesDigest(presented, credential.secretHash);
  const previous = credential.previousSecretHash !== null && matchesDigest(presented, credential.previousSecretHash);
  if (!current && !previous) throw refused;
  return { nodeId: credential.nodeId, current, previousKept: credential.previousSecretHash !== null };
}
