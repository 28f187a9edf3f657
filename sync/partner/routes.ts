import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { mediaType } from '../../src/core/http/body.js';
import { RequestError, errorBody, refusalResponse } from '../../src/core/http/errors.js';
import type { IncomingRequest, OutgoingResponse, Route } from '../../src/core/http/server.js';
import { Decimal } from '../../src/core/money/decimal.js';
import type { PARTNER_OPERATIONS } from '../admin/resources.js';
import { ledgerHolds, money } from '../ledger/balance.js';
import type { Steps } from '../ledger/sql-steps.js';
import { ledgerReads, type LedgerSteps } from '../ledger/steps.js';
import type { BalanceKey, LedgerStore } from '../ledger/store.js';
import { hashPassword } from '../portal/password.js';
import { debitRecallingLeases } from '../ledger/debit-recall.js';
import type { LeaseRecalls } from '../ledger/lease-recall.js';
import { decimalsOf, exactAmount } from './amount.js';
import { KeysUnavailable, PartnerAuthenticator, TokenRefusal, type PartnerIdentity } from './auth.js';
import { twelveDigits } from './codes.js';
import { ThrottledRequest, type PartnerLimits, type ThrottleLimit } from './limits.js';
import { JsonNumber, RawNumber, canonicalJson, stringifyWithRawNumbers, type ExactJson } from './exact-json.js';
import {
  accountCode,
  correlationId,
  idempotencyKey,
  optionalBoolean,
  optionalCurrency,
  optionalString,
  partnerBody,
  type Body,
} from './request.js';
import type { KeptAnswer, PartnerProduct, PartnerStore, PartnerTenant, RetailAccount } from './store.js';

/**
 * The partner API (../shared/spec/partner-api.openapi.yaml): JSON POSTs under an optional stage prefix,
 * each authenticated by a Cognito ID token (auth.ts), scoped to the token's tenant and the product (and
 * currency) the body or the token names. Writes are idempotent by tenant, operation and Idempotency-Key:
 * the answer is kept in the same transaction as the change, and a repeat replays it.
 *
 * Every operation of the contract is served. call_history lists the CDRs the centre settled against the
 * retail account; setup_call stores a translation, which reaches the sidecars as a live delta committed with
 * it (src/sidecar/retail/access-numbers.ts); delete_account ends the account's translations, each a delta
 * too, and recalls the credit nodes hold for it.
 */
export type PartnerOperation = (typeof PARTNER_OPERATIONS)[number];

export interface PartnerApiContext {
  partner: PartnerStore;
  ledger: LedgerStore;
  /**
   * Where delete_account marks the leases nodes hold on the account, to be handed back at their next rounds, a
   * debit_balance recalls them at once, and a top-up or debit is told to the nodes (lease-recall.ts).
   */
  recalls: LeaseRecalls;
  auth: PartnerAuthenticator;
  log: Logger;
  stagePrefix: string;
  /** The store's group commit (store/wal-flush.ts): a write, or the replay of a kept one, is answered once it is on disk. */
  flushed: () => Promise<void>;
  /**
   * Told of each operation's outcome (the metrics): ok, replayed, error, or the refusal's code. Never the tenant
   * or the account: a label of either would be unbounded.
   */
  onOperation?: (operation: string, outcome: string) => void;
  /** What one caller may cost: the per-address limit on unverified tokens, the per-tenant rate (limits.ts). */
  limits: PartnerLimits;
  /** Told of each request a limit refused (the metrics), by which limit. */
  onThrottled?: (limit: ThrottleLimit) => void;
}

/** Partner bodies are a handful of short fields. */
export const PARTNER_MAX_BODY_BYTES = 16 * 1024;

const RETAIL = 'retail' as const;

interface Scope {
  tenant: PartnerTenant;
  identity: PartnerIdentity;
  correlation: string;
}

interface Answer {
  status: number;
  body: Record<string, unknown>;
  /**
   * The retail account whose balance the write changed, and the leases nodes hold on it as it commits: those
   * nodes, and the ones waiting for it, are told once it is on disk.
   */
  balanceChanged?: AccountLeases;
  /** The retail account whose nodes' leases (as the write commits) are recalled once it is on disk (delete_account). */
  recallLeases?: AccountLeases;
}

/** A retail account and the non-zero leases nodes hold on it, read in the write's transaction. */
interface AccountLeases {
  accountId: number;
  leases: { node: string; amount: string }[];
}

/** A write's outcome: the answer kept by an earlier request with its key, or its own. */
type Outcome = { kept: KeptAnswer } | { fresh: Answer & { text: string } };

/** debit_balance beyond what is not leased, while the balance itself has it: the leases are recalled and it is tried again. */
class HeldInLeasesRefusal extends RequestError {
  constructor(
    message: string,
    readonly accountId: number,
    readonly amount: Decimal,
  ) {
    super('insufficient_balance', message);
  }
}

/**
 * What a write does inside its transaction, as steps on either engine; it throws a RequestError to refuse
 * (then nothing is written). On PostgreSQL it may run more than once (a retried transaction): no effect
 * outside the database belongs in it.
 */
type WriteWork = (tx: LedgerSteps) => Steps<Answer>;

/**
 * An operation's part of the request's one transaction (handle runs it after the tenant's checks, in the same
 * one). A read answers from it (on SQLite one read transaction, on PostgreSQL one client). A write checks the
 * request there and returns the work to run next in that same write transaction, where the key is checked and
 * the answer kept; or a promise of the work when it must first wait for something off the event loop
 * (create_account's PIN hash), which then runs in a second transaction.
 */
interface OperationSpec {
  name: PartnerOperation;
  fields: readonly string[];
  read?: (body: Body, scope: Scope) => Steps<Answer>;
  write?: (body: Body, scope: Scope, transactionId: string) => Steps<WriteWork | Promise<WriteWork>>;
}

const SCOPE_FIELDS = ['account', 'product_id', 'currency'] as const;

/** call_history: the contract's "up to 10 most recent" calls of the "last 30 days". */
const HISTORY_CALLS = 10;
const HISTORY_DAYS = 30;
const DAY_MS = 86_400_000;

/** setup_call's ttl bounds, in seconds (the contract's SetupCallRequest.ttl). */
const MAX_TTL_SECONDS = 86_400;

export function partnerRoutes(context: PartnerApiContext): Route[] {
  const { partner } = context;

  /**
   * The product the request is about: the body's, else the token's, else the tenant's only active one. A token
   * that carries a product (custom:product_id) is scoped to it: the body may repeat it, not name a sibling
   * (the body is the caller's to write; the claim is the issuer's).
   */
  function* productIn(body: Body, scope: Scope, nullable = false): Steps<PartnerProduct> {
    const fromBody = optionalString(body, 'product_id', 64, nullable);
    const fromToken = scope.identity.productId;
    if (fromBody !== null && fromToken !== null && fromBody !== fromToken)
      throw new RequestError('partner_out_of_scope', `the token is scoped to product ${JSON.stringify(fromToken)}`);
    const named = fromBody ?? fromToken;
    let product: PartnerProduct | null;
    if (named !== null) product = yield* partner.product(scope.tenant.id, named);
    else {
      const active = yield* partner.activeProducts(scope.tenant.id);
      if (active.length !== 1) throw new RequestError('invalid_field', 'product_id is required: the tenant has more than one product');
      product = active[0];
    }
    if (product === null || product.status !== 'active')
      throw new RequestError('partner_out_of_scope', `product ${JSON.stringify(named)} is not one of this tenant's active products`);
    const currency = optionalCurrency(body);
    if (currency !== null && currency !== product.currency)
      throw new RequestError('partner_out_of_scope', `product ${product.product_id} is in ${product.currency}, not ${currency}`);
    return product;
  }

  /** The account the body names; inside a write (`forUpdate`), locked for the write's transaction. */
  function* accountOf(body: Body, product: PartnerProduct, forUpdate = false): Steps<RetailAccount> {
    const code = accountCode('account', body.account);
    const account = yield* partner.account(product.id, code, forUpdate);
    // Another tenant's or product's account is answered exactly as one that does not exist: never visible.
    if (account === null) throw new RequestError('account_not_found', `no account ${code} in product ${product.product_id}`);
    return account;
  }

  /** call_history and setup_call list 403, not 404, for an account outside the tenant's product. */
  function* scopedAccountOf(body: Body, product: PartnerProduct, name = 'account', forUpdate = false): Steps<RetailAccount> {
    const code = accountCode(name, body[name]);
    const account = yield* partner.account(product.id, code, forUpdate);
    if (account === null)
      throw new RequestError('account_out_of_scope', `no account ${code} in this tenant's product ${product.product_id}`);
    return account;
  }

  const scopeFields = (scope: Scope, product: PartnerProduct, code: string): Record<string, unknown> => ({
    tenant_id: scope.tenant.tenant_id,
    product_id: product.product_id,
    currency: product.currency,
    account_code_12: code,
  });

  const balanceKey = (account: RetailAccount, product: PartnerProduct): BalanceKey => ({
    entityType: RETAIL,
    entityId: account.id,
    currency: product.currency,
  });

  /** topup and debit_balance: one ledger transaction on the retail account's balance. */
  const moneyWrite = (kind: 'credit' | 'debit') =>
    function* (body: Body, scope: Scope, transactionId: string): Steps<WriteWork> {
      const product = yield* productIn(body, scope);
      const amount = exactAmount('amount', body.amount, product.currency);
      return function* (tx) {
        // The account locked before its balance (PostgreSQL), as every write to it does: a delete_account
        // racing this waits, and is seen.
        const account = yield* accountOf(body, product, true);
        if (account.status !== 'active') throw new RequestError('account_deactivated', `account ${account.account_code} is deactivated`);
        yield* tx.lockBalances([balanceKey(account, product)]);
        const current = yield* tx.balance(RETAIL, account.id);
        const before = new Decimal(current.balance);
        const change = new Decimal(amount);
        // Available is what nodes do not hold in credit leases for calls (reserved): a debit may not take that.
        if (kind === 'debit' && before.minus(new Decimal(current.reserved)).lessThan(change)) {
          const message = `insufficient balance: ${money(before.minus(new Decimal(current.reserved)))} available, ${amount} asked`;
          throw before.greaterThanOrEqualTo(change)
            ? new HeldInLeasesRefusal(message, account.id, change)
            : new RequestError('insufficient_balance', message);
        }
        const next = kind === 'credit' ? before.plus(change) : before.minus(change);
        if (!ledgerHolds(next, before))
          throw new RequestError(
            'invalid_amount',
            `amount would take the balance to ${money(next, before, change)}: the ledger holds balances below 10^15`,
          );
        const after = money(next, before, change);
        yield* tx.applyChange(balanceKey(account, product), {
          next: { balance: after, reserved: current.reserved },
          transaction: {
            transaction_type: kind,
            amount,
            description: `partner ${kind === 'credit' ? 'topup' : 'debit_balance'} ${transactionId}`,
            cdr_id: null,
            call_id: null,
          },
        });
        // Who holds lease of it, read here rather than in a read transaction after the commit: what a round
        // leases after this commit is leased from the new balance already.
        const leases = yield* ledgerReads.leasesOf(RETAIL, account.id);
        return {
          status: 200,
          body: {
            result: 'OK',
            error: null,
            ...scopeFields(scope, product, account.account_code),
            balance_before: new RawNumber(money(before, before)),
            balance_after: new RawNumber(after),
            ledger_logged: true,
          },
          balanceChanged: { accountId: account.id, leases },
        };
      };
    };

  const operations: OperationSpec[] = [
    {
      name: 'get_balance',
      fields: SCOPE_FIELDS,
      read: function* (body, scope) {
        // Within the request's one read: the product, the account and its balance come from one state.
        const product = yield* productIn(body, scope);
        const account = yield* accountOf(body, product);
        const state = yield* ledgerReads.getBalance(RETAIL, account.id);
        // Never rounded: a call's charge can carry up to 6 decimals (the trunk's precision), and a balance shown
        // to the cent would not be the one the ledger holds.
        const held = new Decimal(state.balance);
        const reserved = new Decimal(state.reserved);
        const balance = new RawNumber(money(held, held));
        const available = money(held.minus(reserved), held, reserved);
        return {
          status: 200,
          body: {
            ...scopeFields(scope, product, account.account_code),
            account: account.account_code,
            tenant: scope.tenant.tenant_id,
            total_balance: balance,
            balances: [{ id: 'monetary', value: balance, weight: 0 }],
            balance_map: { '*monetary': balance },
            available_balance: new RawNumber(available),
            status: account.status,
          },
        };
      },
    },
    {
      name: 'call_history',
      fields: SCOPE_FIELDS,
      read: function* (body, scope) {
        const product = yield* productIn(body, scope);
        const account = yield* scopedAccountOf(body, product);
        const since = new Date(Date.now() - HISTORY_DAYS * DAY_MS).toISOString();
        const decimals = decimalsOf(product.currency);
        const calls = (yield* partner.calls(account.id, since, HISTORY_CALLS)).map((call) => ({
          called_number: call.dnis,
          duration_seconds: call.billable_duration_customer,
          // The charge as the ledger debited it, written with the currency's decimals (never through a double).
          amount_charged: new RawNumber(
            new Decimal(call.account_charge).toFixed(Math.max(decimals, new Decimal(call.account_charge).decimalPlaces())),
          ),
        }));
        return { status: 200, body: { ...scopeFields(scope, product, account.account_code), calls } };
      },
    },
    { name: 'topup', fields: [...SCOPE_FIELDS, 'amount'], write: moneyWrite('credit') },
    { name: 'debit_balance', fields: [...SCOPE_FIELDS, 'amount'], write: moneyWrite('debit') },
    {
      name: 'create_account',
      fields: ['product_id', 'initial_balance', 'requires_pin', 'external_user_id', 'cli'],
      write: function* (body, scope) {
        if (body.product_id === undefined && scope.identity.productId === null)
          throw new RequestError('invalid_field', 'product_id is required');
        const product = yield* productIn(body, scope);
        const initial =
          body.initial_balance === undefined ? '0' : exactAmount('initial_balance', body.initial_balance, product.currency, true);
        const requiresPin = optionalBoolean(body, 'requires_pin') ?? product.requires_pin === 1;
        const externalUserId = callerId(body, true);
        // The PIN is shown once, in this answer; only its scrypt hash is stored (hashed before the transaction:
        // scrypt runs off the event loop, the transaction may not wait for it).
        const pin = requiresPin ? twelveDigits() : null;
        const work = (pinHash: string | null): WriteWork =>
          function* (tx) {
            if (externalUserId !== null && (yield* partner.holderOf(product.id, externalUserId)) !== null)
              throw new RequestError('external_user_id_taken', 'another account of this product has this external_user_id');
            const { id, code } = yield* partner.createAccount(product.id, externalUserId, pinHash);
            const zero = money(new Decimal(0));
            if (new Decimal(initial).greaterThan(0))
              yield* tx.applyChange(
                { entityType: RETAIL, entityId: id, currency: product.currency },
                {
                  next: { balance: initial, reserved: '0' },
                  transaction: {
                    transaction_type: 'credit',
                    amount: initial,
                    description: 'partner create_account initial_balance',
                    cdr_id: null,
                    call_id: null,
                  },
                },
              );
            else yield* tx.writeBalance({ entityType: RETAIL, entityId: id, currency: product.currency }, { balance: zero, reserved: '0' });
            return {
              status: 201,
              body: {
                ...scopeFields(scope, product, code),
                initial_balance: new RawNumber(money(new Decimal(initial))),
                requires_pin: requiresPin,
                external_user_id: externalUserId,
                pin_12: pin,
              },
            };
          };
        return pin === null ? work(null) : hashPassword(pin).then(work);
      },
    },
    {
      name: 'delete_account',
      fields: ['account', 'product_id', 'reason'],
      write: function* (body, scope) {
        const product = yield* productIn(body, scope, true);
        const reason = optionalString(body, 'reason', 500, true);
        accountCode('account', body.account);
        return function* () {
          const account = yield* accountOf(body, product, true);
          // A repeat is 200 with the first deactivation's time and reason: deleting is soft and happens once.
          const at = account.deactivated_at ?? new Date().toISOString();
          if (account.deactivated_at === null) {
            yield* partner.deactivate(account.id, at, reason);
            // No call through a translation set up before (each ended one is a delta in this transaction), and the
            // credit nodes hold for it comes back once this commits (recallLeases).
            yield* partner.endTranslations(account.id, at);
          }
          return {
            recallLeases:
              account.deactivated_at === null
                ? { accountId: account.id, leases: yield* ledgerReads.leasesOf(RETAIL, account.id) }
                : undefined,
            status: 200,
            body: {
              tenant_id: scope.tenant.tenant_id,
              account_code_12: account.account_code,
              product_id: product.product_id,
              status: 'deactivated',
              deactivated_at: at,
              reason: account.deactivated_at === null ? reason : account.deactivation_reason,
            },
          };
        };
      },
    },
    {
      name: 'change_cli',
      fields: ['account', 'product_id', 'external_user_id', 'cli'],
      write: function* (body, scope) {
        const product = yield* productIn(body, scope, true);
        accountCode('account', body.account);
        const externalUserId = callerId(body, false)!;
        return function* () {
          const account = yield* accountOf(body, product, true);
          if (account.status !== 'active') throw new RequestError('account_deactivated', `account ${account.account_code} is deactivated`);
          const holder = yield* partner.holderOf(product.id, externalUserId);
          if (holder !== null && holder !== account.id)
            throw new RequestError('external_user_id_taken', 'another account of this product has this external_user_id');
          yield* partner.changeCli(account.id, externalUserId);
          return {
            status: 200,
            body: {
              tenant_id: scope.tenant.tenant_id,
              account_code_12: account.account_code,
              product_id: product.product_id,
              external_user_id: externalUserId,
            },
          };
        };
      },
    },
    {
      name: 'setup_call',
      fields: ['a_number', 'b_number', 'access_number', 'account_number', 'ttl', 'product_id', 'currency'],
      write: function* (body, scope) {
        const aNumber = phoneNumber(body, 'a_number');
        const bNumber = phoneNumber(body, 'b_number');
        const accessNumber = phoneNumber(body, 'access_number');
        const ttl = ttlSeconds(body.ttl);
        const product = yield* productIn(body, scope);
        if (!(product.access_numbers ?? '').split(',').includes(accessNumber))
          throw new RequestError('invalid_access_number', `access_number is not one of product ${product.product_id}'s access numbers`);
        accountCode('account_number', body.account_number);
        return function* () {
          const account = yield* scopedAccountOf(body, product, 'account_number', true);
          if (account.status !== 'active') throw new RequestError('account_deactivated', `account ${account.account_code} is deactivated`);
          const now = Date.now();
          const insertId = yield* partner.addTranslation(
            account,
            aNumber,
            accessNumber,
            bNumber,
            new Date(now).toISOString(),
            new Date(now + ttl * 1000).toISOString(),
          );
          return {
            status: 200,
            body: { message: 'Call setup saved successfully', insertId, ...scopeFields(scope, product, account.account_code) },
          };
        };
      },
    },
  ];

  return operations.map((spec) => ({
    method: 'POST',
    path: `${context.stagePrefix}/${spec.name}`,
    maxBodyBytes: PARTNER_MAX_BODY_BYTES,
    retainsBody: true,
    readsAuthorization: true,
    readsHeaders: ['idempotency-key', 'x-correlation-id', ...(context.limits.addresses.trustsProxies ? ['x-forwarded-for'] : [])],
    handler: (request) => handle(context, spec, request),
  }));
}

/** external_user_id, or its alias cli: either may be sent; when both are, they must be equal. */
function callerId(body: Body, optional: boolean): string | null {
  const primary = optionalString(body, 'external_user_id', 255, optional);
  const alias = optionalString(body, 'cli', 255, optional);
  if (primary !== null && alias !== null && primary !== alias) throw new RequestError('invalid_field', 'external_user_id and cli differ');
  const value = primary ?? alias;
  if (value === null && !optional) throw new RequestError('invalid_field', 'external_user_id (or cli) is required');
  if (value !== null && value.trim() === '') throw new RequestError('invalid_field', 'external_user_id must not be empty');
  return value;
}

/** A caller's, destination or access number: digits, a leading + allowed; kept as digits (how calls present them). */
function phoneNumber(body: Body, name: string): string {
  const value = body[name];
  if (typeof value !== 'string' || !/^\+?[0-9]{4,20}$/.test(value))
    throw new RequestError('invalid_field', `${name} must be 4 to 20 digits, a leading + allowed`);
  return value.replace(/^\+/, '');
}

/** setup_call's ttl: a JSON integer of seconds, 1 to 86400. */
function ttlSeconds(value: ExactJson | undefined): number {
  if (!(value instanceof JsonNumber) || !/^[0-9]{1,5}$/.test(value.text) || Number(value.text) < 1 || Number(value.text) > MAX_TTL_SECONDS)
    throw new RequestError('invalid_field', `ttl must be a whole number of seconds from 1 to ${MAX_TTL_SECONDS}`);
  return Number(value.text);
}

async function handle(context: PartnerApiContext, spec: OperationSpec, request: IncomingRequest): Promise<OutgoingResponse> {
  const correlation = correlationId(request.headers?.['x-correlation-id']);
  const headers: Record<string, string> = { 'X-Correlation-Id': correlation };
  // Set once the write's Idempotency-Key is known valid: its refusals name it, as the contract's ErrorResponse allows.
  // (A holder: it is set inside the request's transaction, a closure.)
  const named: { transactionId: string | null } = { transactionId: null };
  try {
    // The authorizer first, as at API Gateway: an unauthenticated caller learns nothing about its body.
    // Spent before the token is checked, given back once it verified (limits.ts). The client's key is worked out
    // only then: a token already verified (nearly every request) needs none.
    let client = '';
    let spent = false as boolean; // set inside the callback, which narrowing does not follow
    let identity: PartnerIdentity;
    try {
      identity = await context.auth.identify(request.authorization, () => {
        client = context.limits.addresses.keyOf(request.remoteAddress, request.headers?.['x-forwarded-for']);
        context.limits.spendAuthAttempt(client);
        spent = true;
      });
      if (spent) context.limits.authAttemptPassed(client);
    } catch (error) {
      if (error instanceof KeysUnavailable) {
        if (spent) context.limits.authAttemptPassed(client);
        context.log.error({ correlation_id: correlation, operation: spec.name, reason: error.message }, 'partner signing keys unavailable');
        throw new RequestError('partner_keys_unavailable', 'the signing keys cannot be fetched; retry later');
      }
      if (!(error instanceof TokenRefusal)) throw error;
      context.log.info({ correlation_id: correlation, operation: spec.name, reason: error.message, client }, 'partner token refused');
      throw new RequestError('partner_token_invalid', 'missing or invalid authorization');
    }
    context.limits.spendTenantRequest(identity.tenantId);
    // The request's own checks are made now and refused, if at all, after the tenant's, in the order the contract's
    // errors always came: so the tenant can be read in the operation's own transaction (one a request, not one for
    // the tenant and one or three for the operation).
    const contentType = request.contentType;
    const mediaTypeRefused = contentType !== '' && mediaType(contentType) !== 'application/json';
    let key: string | null = null;
    let keyChecked = false;
    let body: Body = {};
    let refusal: Error | null = null;
    if (!mediaTypeRefused)
      try {
        key = spec.write === undefined ? null : idempotencyKey(request.headers?.['idempotency-key']);
        keyChecked = true;
        body = partnerBody(request.body, spec.fields);
      } catch (error) {
        refusal = error instanceof Error ? error : new Error(String(error));
      }
    const { partner } = context;
    /** The tenant's checks, then the request's refusal if it had one: its scope. */
    const scoped = function* (): Steps<Scope> {
      const tenant = yield* partner.tenant(identity.tenantId);
      if (tenant === null || tenant.status !== 'active')
        throw new RequestError('partner_tenant_not_active', 'the tenant is unknown or not active');
      if (!tenant.operations.split(',').includes(spec.name))
        throw new RequestError('partner_operation_not_allowed', `the tenant may not call ${spec.name}`);
      if (mediaTypeRefused) throw new RequestError('unsupported_media_type', 'content-type must be application/json');
      if (keyChecked) named.transactionId = key;
      if (refusal !== null) throw refusal;
      return { tenant, identity, correlation };
    };
    if (spec.read !== undefined) {
      const answer = await partner.read(
        (function* (): Steps<Answer> {
          return yield* spec.read!(body, yield* scoped());
        })(),
      );
      context.onOperation?.(spec.name, 'ok');
      return respond(answer.status, { ...answer.body, correlation_id: correlation }, headers);
    }
    // The request is its body and, when the token carries one, its product: a kept answer is replayed only to a
    // caller that could have made the request (a token of another product gets a conflict, not that product's
    // answer, which is returned before the work's scope checks run). A token without a product digests as before.
    const digest =
      refusal === null && !mediaTypeRefused
        ? createHash('sha256')
            .update(canonicalJson(body as Record<string, ExactJson>))
            .update(identity.productId === null ? '' : `\ncustom:product_id=${identity.productId}`)
            .digest('hex')
        : '';
    /** The key checked and the work done, its answer kept: inside the transaction that writes them. */
    const idempotent = function* (tenant: PartnerTenant, work: WriteWork, tx: LedgerSteps): Steps<Outcome> {
      // Checked inside the transaction that writes it, the key held: two requests with one key cannot both pass here.
      yield* partner.lockKey(tenant.tenant_id, spec.name, key!);
      const kept = yield* partner.kept(tenant.tenant_id, spec.name, key!);
      if (kept !== null) return { kept };
      const answer = yield* work(tx);
      const text = stringifyWithRawNumbers({ ...answer.body, correlation_id: correlation, transaction_id: key });
      yield* partner.keep(tenant.tenant_id, spec.name, key!, {
        request_digest: digest,
        status: answer.status,
        // A PIN is shown once: the kept answer (replayed to a retry) never holds it.
        body: 'pin_12' in answer.body && answer.body.pin_12 !== null ? text.replace(/"pin_12":"[0-9]{12}"/, '"pin_12":null') : text,
        transaction_id: key!,
      });
      return { fresh: { ...answer, text } };
    };
    // The tenant's and the request's checks, the key and the work in one write transaction: a read transaction
    // before it cost a write as much as its statements did. Only work that must first wait off the event loop
    // (create_account's PIN hash) leaves it after the checks and runs in a second one, as every write once did.
    const attempt = async (): Promise<{ tenant: PartnerTenant; outcome: Outcome }> => {
      const done = await context.ledger.run(function* (tx): Steps<
        { tenant: PartnerTenant; outcome: Outcome } | { tenant: PartnerTenant; pending: Promise<WriteWork> }
      > {
        const scope = yield* scoped();
        const work = yield* spec.write!(body, scope, key!);
        if (work instanceof Promise) return { tenant: scope.tenant, pending: work };
        return { tenant: scope.tenant, outcome: yield* idempotent(scope.tenant, work, tx) };
      });
      if (!('pending' in done)) return done;
      const work = await done.pending;
      return { tenant: done.tenant, outcome: await context.ledger.run((tx) => idempotent(done.tenant, work, tx)) };
    };
    // A debit the leases stand in the way of recalls them and is tried again (each try its own transaction).
    const { tenant, outcome } = await debitRecallingLeases(context, attempt, (error) =>
      error instanceof HeldInLeasesRefusal ? { entityType: RETAIL, entityId: error.accountId, amount: error.amount } : null,
    );
    // Committed: the nodes waiting on the delta channel read the translations it set up or ended (their answer
    // waits for the same flush as this one).
    context.partner.committed();
    // A replay too: the first attempt's answer may have been committed a moment ago and not yet be on disk.
    await context.flushed();
    if ('kept' in outcome) {
      const { kept } = outcome;
      if (kept.request_digest !== digest)
        throw new RequestError('idempotency_conflict', 'Idempotency key already used with a different request');
      context.log.info({ correlation_id: correlation, operation: spec.name, tenant: tenant.tenant_id }, 'partner write replayed');
      context.onOperation?.(spec.name, 'replayed');
      return { status: kept.status, body: kept.body, headers: { ...headers, 'X-Transaction-Id': kept.transaction_id } };
    }
    context.log.info(
      { correlation_id: correlation, operation: spec.name, tenant: tenant.tenant_id, transaction_id: key },
      'partner write done',
    );
    context.onOperation?.(spec.name, 'ok');
    const { recallLeases, balanceChanged } = outcome.fresh;
    // The credit nodes hold for a deleted account comes back at once, over the live channel (what a live call
    // holds stays until it ends; the centre leases it nothing more).
    if (recallLeases !== undefined)
      for (const lease of recallLeases.leases) context.recalls.recallNow(lease.node, RETAIL, recallLeases.accountId, lease.amount, true);
    // The nodes holding lease of a changed balance (read in its transaction), and those waiting for it, ask again.
    if (balanceChanged !== undefined)
      context.recalls.balanceChanged(
        RETAIL,
        balanceChanged.accountId,
        balanceChanged.leases.map((lease) => lease.node),
      );
    return { status: outcome.fresh.status, body: outcome.fresh.text, headers: { ...headers, 'X-Transaction-Id': key! } };
  } catch (error) {
    const refusal = refusalResponse(error);
    if (refusal === null) {
      context.onOperation?.(spec.name, 'error');
      throw error;
    }
    const { code, message } = error as RequestError;
    context.onOperation?.(spec.name, code);
    if (error instanceof ThrottledRequest) {
      // Not logged one by one: a flood of them is what the limit is for; the metrics count them.
      context.onThrottled?.(error.limit);
      headers['Retry-After'] = String(error.retryAfterSeconds);
    } else context.log.info({ correlation_id: correlation, operation: spec.name, reason_code: code, message }, 'partner request refused');
    return {
      status: refusal.status,
      body: errorBody(code, message, {
        correlation_id: correlation,
        ...(named.transactionId === null ? {} : { transaction_id: named.transactionId }),
      }),
      headers,
    };
  }
}

function respond(status: number, body: Record<string, unknown>, headers: Record<string, string>): OutgoingResponse {
  return { status, body: stringifyWithRawNumbers(body), headers };
}
