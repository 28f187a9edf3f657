import { RequestError } from '../../src/core/http/errors.js';
import type { IncomingRequest, OutgoingResponse, Route } from '../../src/core/http/server.js';
import { Decimal } from '../../src/core/money/decimal.js';
import { isDecimalString } from '../../src/core/rating/rating.js';
import { debitRecallingLeases } from './debit-recall.js';
import type { LeaseRecalls } from './lease-recall.js';
import {
  BalanceLimitRefusal,
  LedgerRefusal,
  findEntity,
  headroom,
  money,
  operationChange,
  type EntityType,
  type LedgerEntity,
  type Operation,
} from './balance.js';
import { json } from '../../src/core/http/respond.js';
import { parseQuery } from '../../src/core/http/query.js';
import type { ConfigStore } from '../store/config-store.js';
import { adminRoute, PAGE_PARAMS, pageOf, readBody } from '../http/handlers.js';
import type { LedgerStore } from './store.js';

/** The balance endpoints: read a balance, credit, debit, adjust, list its transactions. */

interface BalanceRoutesContext {
  store: ConfigStore;
  ledger: LedgerStore;
  maxBodyBytes: number;
  /** Where a changed balance is told to the nodes, and a debit recalls lease (lease-recall.ts). */
  recalls: LeaseRecalls;
}

/** A balance changed: the nodes holding lease of it, and those waiting for it, are refreshed over the channel. */
export async function tellNodes(
  context: { ledger: LedgerStore; recalls: LeaseRecalls },
  entityType: EntityType,
  entityId: number,
): Promise<void> {
  const holders = await context.ledger.leasesOf(entityType, entityId);
  context.recalls.balanceChanged(
    entityType,
    entityId,
    holders.map((holder) => holder.node),
  );
}

async function entityOf(context: BalanceRoutesContext, request: IncomingRequest): Promise<LedgerEntity> {
  const type = request.params.entity_type;
  if (type !== 'customer' && type !== 'carrier') throw new RequestError('invalid_parameter', 'entity_type must be customer or carrier');
  const idText = request.params.entity_id;
  if (!/^[1-9][0-9]{0,15}$/.test(idText)) throw new RequestError('invalid_parameter', 'entity_id must be a positive integer');
  const entity = await findEntity(context.store, type, Number(idText));
  if (entity === null)
    throw new RequestError('not_found', `${type === 'customer' ? 'customer account' : 'carrier trunk'} ${idText} not found`);
  return entity;
}

/** An amount as stored, padded to two decimals when it has fewer (a stored "0.0000" keeps its four). */
const cents = (amount: string): string => (/\.[0-9]{2,}$/.test(amount) ? amount : money(new Decimal(amount)));

const MESSAGES: Record<Operation, string> = { credit: 'credit applied', debit: 'debit applied', adjustment: 'adjustment applied' };

export function balanceRoutes(context: BalanceRoutesContext): Route[] {
  const base = '/api/balances/{entity_type}/{entity_id}';
  const route = (method: Route['method'], path: string, handler: (request: IncomingRequest) => Promise<OutgoingResponse>): Route =>
    adminRoute(method, path, context.maxBodyBytes, handler);

  const operation = (kind: Operation): Route =>
    route('POST', `${base}/balance/${kind === 'adjustment' ? 'adjust' : kind}`, async (request) => {
      const entity = await entityOf(context, request);
      const body = readBody(request);
      const amount = body.amount;
      if (typeof amount !== 'string' || !isDecimalString(amount))
        throw new RequestError('invalid_field', 'amount must be a decimal string such as "10.00"');
      const negative = amount.startsWith('-');
      const zero = /^-?0+(\.0+)?$/.test(amount);
      if (kind !== 'adjustment' && (negative || zero)) throw new RequestError('invalid_field', `amount must be positive for a ${kind}`);
      if (kind === 'adjustment' && zero) throw new RequestError('invalid_field', 'an adjustment of zero changes nothing');
      const description = body.description ?? null;
      if (description !== null && (typeof description !== 'string' || description.length > 1024))
        throw new RequestError('invalid_field', 'description must be a string of at most 1024 characters');
      const cdrId = body.cdr_id ?? null;
      if (cdrId !== null && (typeof cdrId !== 'number' || !Number.isSafeInteger(cdrId) || cdrId < 1))
        throw new RequestError('invalid_field', 'cdr_id must be a positive integer');
      const { entityType, entityId } = entity;
      const change = operationChange(entity, kind, { amount, description, cdrId, callId: null });
      try {
        // A debit the balance covers but the nodes' leases hold: they are recalled, and it is tried again.
        await debitRecallingLeases(
          context,
          () => context.ledger.changeBalance({ entityType, entityId, currency: entity.currency }, change),
          (error) => (error instanceof LedgerRefusal && error.heldInLeases ? { entityType, entityId, amount: new Decimal(amount) } : null),
        );
      } catch (error) {
        if (error instanceof LedgerRefusal) throw new RequestError('insufficient_balance', error.message);
        if (error instanceof BalanceLimitRefusal) throw new RequestError('invalid_field', `amount: ${error.message}`);
        throw error;
      }
      // Committed: the nodes holding or waiting for this balance ask again (a top-up is leased at once).
      await tellNodes(context, entityType, entityId);
      return json(200, { message: MESSAGES[kind] });
    });

  return [
    route('GET', `${base}/balance`, async (request) => {
      const entity = await entityOf(context, request);
      const state = await context.ledger.openBalance({
        entityType: entity.entityType,
        entityId: entity.entityId,
        currency: entity.currency,
      });
      const overrun = await context.ledger.getOverrun(entity.entityType, entity.entityId);
      return json(200, {
        id: state.id,
        entity_type: entity.entityType,
        entity_id: entity.entityId,
        // At least two decimals, as every amount the ledger prints (the README's "0.00", never "0").
        balance: cents(state.balance),
        reserved: cents(state.reserved),
        currency: entity.currency,
        billing_mode: entity.billingMode,
        credit_limit: entity.creditLimit,
        headroom: headroom(entity, state),
        updated_at: state.updated_at,
        // Charged beyond what nodes had reserved (calls not admitted, or longer than admitted): contract note 40.
        uncovered: overrun.uncovered,
        uncovered_cdrs: overrun.cdrs,
        last_uncovered_call_id: overrun.last_call_id,
      });
    }),
    operation('credit'),
    operation('debit'),
    operation('adjustment'),
    route('GET', `${base}/transactions`, async (request) => {
      const entity = await entityOf(context, request);
      const page = pageOf(parseQuery(request.query, PAGE_PARAMS));
      const { rows, total } = await context.ledger.listTransactions(entity.entityType, entity.entityId, page.limit ?? 20, page.offset);
      return json(200, { data: rows, meta: { page: page.page, page_size: page.pageSize ?? 20, total } });
    }),
  ];
}
