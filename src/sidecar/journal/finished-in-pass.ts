import type { JournalOp } from './ops.js';
import type { AppliedOp } from './rated-row.js';

type Finish = Extract<JournalOp, { op: 'finish' }>;
type Reservation = Extract<JournalOp, { op: 'held' | 'reserve' }>;

/**
 * The reservations an applier pass both admits and finishes (at 600 calls/s a call's CDR comes about half a
 * second after its admission, so half the calls have both in one pass): their row is written once, in its
 * final state, instead of inserted as held and then updated, which rewrote the row and added, then removed,
 * its entry in the held index. The pass is one transaction, so nothing outside it ever saw the held row.
 *
 * Only where nothing in the pass reads the row between the two: an `extend` of it (an UPDATE of held rows)
 * keeps both ops as they are, and so does a `prune` between them (it deletes by finish time, which the
 * folded row would have too early). A second finish of the same id is left to find no held row, as before.
 */
export interface FinishedInPass {
  /** For a reservation op: the finish to write it with. */
  finishOf: Map<Reservation, Finish>;
  /** The finish ops already written with their reservation. */
  folded: Set<Finish>;
}

export function finishedInPass(ops: readonly AppliedOp[]): FinishedInPass {
  const finishOf = new Map<Reservation, Finish>();
  const folded = new Set<Finish>();
  // Reservations admitted in this pass and still held at this point of it, by id.
  const open = new Map<number, Reservation>();
  for (const op of ops) {
    switch (op.op) {
      case 'held':
      case 'reserve':
        open.set(op.id, op);
        break;
      case 'finish': {
        const reservation = open.get(op.id);
        if (reservation === undefined) break;
        open.delete(op.id);
        finishOf.set(reservation, op);
        folded.add(op);
        break;
      }
      case 'extend':
        open.delete(op.id);
        break;
      case 'prune':
        open.clear();
        break;
      // Neither reads nor writes reservations.
      case 'lease':
      case 'rated':
      case 'ratedRow':
      case 'cdr':
      case 'settledThrough':
      case 'counter':
        break;
    }
  }
  return { finishOf, folded };
}
