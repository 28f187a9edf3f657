import type { NodeSyncReply, NodeSyncRequest } from '../../src/core/protocol/node-sync.js';
import type { LeaseRecalls } from './lease-recall.js';
import { authenticateRound } from './node-auth.js';
import { applyNodeSync, checkRoundSeq, roundEntities, roundLeasesAsked, type RoundTally } from './settlement.js';
import type { Steps } from './sql-steps.js';
import type { LedgerSteps } from './steps.js';

/**
 * A node's money round (POST /api/ledger/node-sync) as one transaction's work, on either engine: the
 * node's secret checked, then a resend of the last applied round (byte for byte, `digest` its body's; its
 * answer was lost) gets that round's answer again and applies nothing, else the round's number is checked,
 * the round applied and recorded as the node's last (in the round's last statement), its answer kept for such a resend. The round row is
 * locked first (PostgreSQL), so a resend racing the round it repeats waits and then finds the kept answer. The credential, the
 * round row and what settling needs first (the entities' rows, the active nodes) are read in one round trip on PostgreSQL
 * (LedgerSteps.openNodeRound): a refused round has then taken its node's round row lock until its rollback, and changed nothing.
 */
export function* nodeRound(
  tx: LedgerSteps,
  round: NodeSyncRequest & { seq: number },
  digest: string,
  authorization: string | undefined,
  recalls?: LeaseRecalls,
  /** What the round did, for the metrics; a resend applies nothing and leaves it at zero. */
  tally?: RoundTally,
): Steps<NodeSyncReply> {
  const opened = yield* tx.openNodeRound(round.node, digest, roundEntities(round), roundLeasesAsked(round));
  yield* authenticateRound(tx, round.node, authorization, opened.credential);
  // The node's first round has no round row yet: made now, once the node is known to be itself.
  const { lastSeq, keptReply } = opened.round ?? (yield* tx.openRound(round.node, digest));
  if (keptReply !== null && lastSeq === round.seq) {
    if (tally !== undefined) tally.resent = true;
    return JSON.parse(keptReply) as NodeSyncReply;
  }
  checkRoundSeq(round.node, round.seq, lastSeq);
  // Recorded with the round's own writes: one statement fewer while its balances are locked.
  return yield* applyNodeSync(tx, round, recalls, { digest }, opened, tally);
}
