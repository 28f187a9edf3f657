import type { CreditSettings } from '../../src/sidecar/credit/node-credit.js';

/**
 * A node's credit settings for tests that drive NodeCredit by hand: calls reserved whole for up to an hour (no
 * slices: no MI), no lease chunk beyond the call, leases idle for an hour before they go back (nothing returns
 * behind a test's back), and postpaid calls refused when the centre cannot be reached.
 */
export const CREDIT_SETTINGS: CreditSettings = {
  admissionSeconds: 3600,
  reservationGraceSeconds: 60,
  leaseChunkMicro: 0,
  idleReturnMs: 3_600_000,
  offlinePostpaid: 'deny',
  sliceSeconds: null,
};
