import { RequestError } from '../../src/http/errors.js';
import type { IncomingRequest, OutgoingResponse, Route } from '../../src/http/server.js';
import { isDecimalString } from '../../src/rating/rating.js';
import { LedgerRefusal, findEntity, headroom, operationChange, type LedgerEntity, type Operation } from '../ledger/ledger.js';
import { guard, json, pageOf, readBody, type AdminContext } from './crud.js';

/** The balance endpoints: read a balance, credit, debit, adjust, list its transactions. */

async function entityOf(context: AdminContext, request: IncomingRequest): Promise<LedgerEntity> {
  const type = request.params.entity_type;
  if (type !== 'customer' && type !== 'carrier') throw new RequestError(400, 'entity_type must be customer or carrier');
  const idText = request.params.entity_id;
  if (!/^[1-9][0-9]{0,15}$/.test(idText)) throw new RequestError(400, 'entity_id must be a positive integer');
  const entity = await findEntity(context.store, type, Number(idText));
  if (entity === null) throw new RequestError(404, `${type === 'customer' ? 'customer account' : 'carrier trunk'} ${idText} not found`);
  return entity;
}

const MESSAGES: Record<Operation, string> = { credit: 'credit applied', debit: 'debit applied', adjustment: 'adjustment applied' };

export function balanceRoutes(context: AdminContext): Route[] {
  const base = '/api/balances/{entity_type}/{entity_id}';
  const route = (method: Route['method'], path: string, handler: (request: IncomingRequest) => Promise<OutgoingResponse>): Route => ({
    method,
    path,
    maxBodyBytes: context.maxBodyBytes,
    retainsBody: true,
    handler: guard(handler),
  });

  const operation = (kind: Operation): Route =>
    route('POST', `${base}/balance/${kind === 'adjustment' ? 'adjust' : kind}`, async (request) => {
      const entity = await entityOf(context, request);
      const body = readBody(request);
      const amount = body.amount;
      if (typeof amount !== 'string' || !isDecimalString(amount)) throw new RequestError(400, 'amount must be a decimal string such as "10.00"');
      const negative = amount.startsWith('-');
      const zero = /^-?0+(\.0+)?$/.test(amount);
      if (kind !== 'adjustment' && (negative || zero)) throw new RequestError(400, `amount must be positive for a ${kind}`);
      if (kind === 'adjustment' && zero) throw new RequestError(400, 'an adjustment of zero changes nothing');
      const description = body.description ?? null;
      if (description !== null && (typeof description !== 'string' || description.length > 1024)) throw new RequestError(400, 'description must be a string of at most 1024 characters');
      const cdrId = body.cdr_id ?? null;
      if (cdrId !== null && (typeof cdrId !== 'number' || !Number.isSafeInteger(cdrId) || cdrId < 1)) throw new RequestError(400, 'cdr_id must be a positive integer');
      try {
        await context.store.changeBalance(
          { entityType: entity.entityType, entityId: entity.entityId, currency: entity.currency },
          operationChange(entity, kind, { amount, description, cdrId, callId: null }),
        );
      } catch (error) {
        if (error instanceof LedgerRefusal) throw new RequestError(400, error.message);
        throw error;
      }
      return json(200, { message: MESSAGES[kind] });
    });

  return [
    route('GET', `${base}/balance`, async (request) => {
      const entity = await entityOf(context, request);
      const state = await context.store.getBalance(entity.entityType, entity.entityId);
      return json(200, {
        id: state.id,
        entity_type: entity.entityType,
        entity_id: entity.entityId,
        balance: state.balance,
        reserved: state.reserved,
        currency: entity.currency,
        billing_mode: entity.billingMode,
        credit_limit: entity.creditLimit,
        headroom: headroom(entity, state),
        updated_at: state.updated_at,
      });
    }),
    operation('credit'),
    operation('debit'),
    operation('adjustment'),
    route('GET', `${base}/transactions`, async (request) => {
      const entity = await entityOf(context, request);
      const params = new URLSearchParams(request.query);
      for (const key of params.keys()) if (!['page', 'page_size', 'limit', 'offset'].includes(key)) throw new RequestError(400, `unknown query parameter ${key.slice(0, 64)}`);
      const page = pageOf(params);
      const { rows, total } = await context.store.list('balance_transactions', {
        where: { entity_type: entity.entityType, entity_id: entity.entityId },
        limit: page.limit ?? 20,
        offset: page.offset,
        orderBy: 'id DESC',
      });
      return json(200, { data: rows, meta: { page: page.page, page_size: page.pageSize ?? 20, total } });
    }),
  ];
}
