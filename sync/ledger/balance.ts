import { Decimal } from '../../src/core/money/decimal.js';
import type { ConfigStore, Row } from '../store/config-store.js';
import type { BalanceChange, BalanceState } from './store.js';

/**
 * Balances at the centre. A prepaid entity's balance is its funds: credit
 * adds, debit takes away. A postpaid entity's balance is its usage against
 * its credit limit: debit adds usage, credit (a payment) takes it away.
 * Headroom is what may still be spent: funds (prepaid) or credit limit minus
 * usage (postpaid), less what is reserved for calls in progress. Amounts are
 * decimal strings; arithmetic is decimal.js, exact.
 */
import type { EntityType } from '../../src/core/protocol/node-sync.js';

export type { EntityType };
export type Operation = 'credit' | 'debit' | 'adjustment';

export interface LedgerEntity {
  entityType: EntityType;
  /** Customer account id, or carrier trunk id. */
  entityId: number;
  currency: string;
  billingMode: 'prepaid' | 'postpaid';
  creditLimit: string | null;
  /** A deactivated retail account: what it owes is still settled, but no node is leased more for it. */
  closed?: boolean;
}

export class LedgerRefusal extends Error {
  constructor(
    message: string,
    /** The balance itself has the amount: what stands in the way is credit leased to nodes (debit-recall.ts). */
    readonly heldInLeases = false,
  ) {
    super(message);
    this.name = 'LedgerRefusal';
  }
}

/**
 * The ledger holds amounts of 15 integer digits (isDecimalString; src/core/money/decimal.ts): a balance stays below
 * 10^15 either side of zero, as every amount written to it does. Beyond, the admin API could not take it back
 * as an amount, and a partner client reading it as a double would not see its cents.
 */
export const LEDGER_LIMIT = new Decimal('1e15');

/** Whether a change may leave the balance at `next` (from `balance`): within the ledger, or no further out than it was. */
export function ledgerHolds(next: Decimal, balance: Decimal): boolean {
  return next.abs().lessThan(LEDGER_LIMIT) || next.abs().lessThanOrEqualTo(balance.abs());
}

/** A credit, debit or adjustment that would take the balance to 10^15 or more (either side of zero): refused, nothing written. */
export class BalanceLimitRefusal extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BalanceLimitRefusal';
  }
}

export async function findEntity(store: ConfigStore, entityType: EntityType, entityId: number): Promise<LedgerEntity | null> {
  // Retail accounts are the partner API's (sync/partner/), not an admin balance resource.
  if (entityType === 'retail') return null;
  return entityFromRow(entityType, entityId, await store.get(entityType === 'customer' ? 'customer_accounts' : 'carrier_trunks', entityId));
}

/** The billing terms of a customer account or carrier trunk row. */
export function entityFromRow(entityType: EntityType, entityId: number, row: Row | null): LedgerEntity | null {
  if (row === null) return null;
  return {
    entityType,
    entityId,
    currency: row.currency as string,
    billingMode: row.billing_mode as 'prepaid' | 'postpaid',
    creditLimit: row.credit_limit as string | null,
    ...(row.status === 'deactivated' ? { closed: true } : {}),
  };
}

/** Decimal places to show: at least 2 (cents), more if an operand carries them. */
export function money(value: Decimal, ...operands: Decimal[]): string {
  return value.toFixed(Math.max(2, ...operands.map((operand) => operand.decimalPlaces())));
}

export function headroom(entity: LedgerEntity, state: BalanceState): string {
  const balance = new Decimal(state.balance);
  const reserved = new Decimal(state.reserved);
  if (entity.billingMode === 'prepaid') return money(balance.minus(reserved), balance, reserved);
  const limit = new Decimal(entity.creditLimit ?? '0');
  return money(limit.minus(balance).minus(reserved), limit, balance, reserved);
}

export interface OperationInput {
  amount: string;
  description: string | null;
  cdrId: number | null;
  callId: string | null;
}

/**
 * The change one operation makes, as a function of the current state (run by
 * the store inside its transaction). A manual prepaid debit may not take the
 * balance below zero; an adjustment may (it is a correction).
 */
export function operationChange(
  entity: LedgerEntity,
  operation: Operation,
  input: OperationInput,
): (current: BalanceState) => BalanceChange {
  const amount = new Decimal(input.amount);
  return (current) => {
    const balance = new Decimal(current.balance);
    const prepaid = entity.billingMode === 'prepaid';
    let next: Decimal;
    // The contract: an adjustment "adds the amount to the current balance", whatever the billing mode.
    if (operation === 'adjustment') next = balance.plus(amount);
    else if (operation === 'credit') next = prepaid ? balance.plus(amount) : balance.minus(amount);
    else next = prepaid ? balance.minus(amount) : balance.plus(amount);
    if (operation === 'debit' && prepaid && next.lessThan(new Decimal(current.reserved))) {
      throw new LedgerRefusal(
        `insufficient balance: ${headroom(entity, current)} available, ${input.amount} asked`,
        next.greaterThanOrEqualTo(0),
      );
    }
    if (!ledgerHolds(next, balance))
      throw new BalanceLimitRefusal(
        `the balance would be ${money(next, balance, amount)}: the ledger holds balances below 10^15 either side of zero`,
      );
    return {
      next: { balance: money(next, balance, amount), reserved: current.reserved },
      transaction: {
        transaction_type: operation,
        amount: money(amount, amount),
        description: input.description,
        cdr_id: input.cdrId,
        call_id: input.callId,
      },
    };
  };
}
