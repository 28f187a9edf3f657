import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Packr } from 'msgpackr';
import { decodeSnapshot, encodeSnapshot } from '../../src/core/snapshot/codec.js';
import { compileSnapshot } from '../../src/core/snapshot/compile.js';
import type { SnapshotDescription } from '../../src/core/snapshot/schema.js';
import { validateSnapshot } from '../../src/core/snapshot/validate.js';
import { routingTables } from '../fixtures/routing.js';

const packr = new Packr({ moreTypes: true, useRecords: false });
/** The fixture's first customer account id. */
const d0 = (): number => routingTables().customer_accounts[0].id;

function refusal(change: (description: SnapshotDescription) => void): string {
  const result = validateSnapshot(routingTables(change));
  assert.equal(result.ok, false);
  return result.reason;
}

describe('snapshot codec', () => {
  it('round-trips the tables and the header', () => {
    const tables = routingTables();
    const decoded = decodeSnapshot(encodeSnapshot(tables, 3, '2026-11-24T00:00:00.000Z'), 2);
    assert.ok(decoded.ok);
    assert.equal(decoded.snapshot.version, 3);
    assert.equal(decoded.snapshot.created_at, '2026-11-24T00:00:00.000Z');
    assert.match(decoded.snapshot.checksum, /^[0-9a-f]{64}$/);
    assert.deepEqual(decoded.snapshot.tables.customer_trunks, tables.customer_trunks);
    assert.deepEqual([...decoded.snapshot.tables.rate_deck_rates.effective_at], [...tables.rate_deck_rates.effective_at]);
    assert.ok(decoded.snapshot.tables.rate_deck_rates.rate_deck_id instanceof Uint32Array);
  });

  it('refuses, before decoding the payload, a stale version, a changed header or payload, another format', () => {
    const bytes = encodeSnapshot(routingTables(), 3);
    const stale = decodeSnapshot(bytes, 3);
    assert.deepEqual(stale.ok ? null : stale.code, 'snapshot_stale_version');
    const envelope = packr.unpack(bytes) as Record<string, unknown>;
    const bumped = decodeSnapshot(packr.pack({ ...envelope, version: 4 }), 0); // version is under the checksum
    assert.deepEqual(bumped.ok ? null : bumped.code, 'snapshot_checksum');
    const future = decodeSnapshot(packr.pack({ ...envelope, format_version: 2 }), 0);
    assert.deepEqual(future.ok ? null : future.code, 'snapshot_format_version');
    const truncated = decodeSnapshot(bytes.subarray(0, bytes.length - 10), 0);
    assert.equal(truncated.ok, false);
    const notMap = decodeSnapshot(packr.pack([1, 2, 3]), 0);
    assert.deepEqual(notMap.ok ? null : notMap.code, 'snapshot_malformed');
  });
});

describe('snapshot validation', () => {
  it('accepts the fixture', () => {
    assert.deepEqual(validateSnapshot(routingTables()), { ok: true });
  });

  it('names the row and field that breaks a rule', () => {
    assert.match(
      refusal((d) => void (d.customer_trunks[1].customer_account_id = 9)),
      /customer_trunks 11: customer_account_id 9 does not exist/,
    );
    assert.match(
      refusal((d) => void (d.carrier_gateways[0].ip_address = '203.0.113.300')),
      /carrier_gateways 201: invalid ip_address/,
    );
    assert.match(
      refusal((d) => void (d.rate_deck_rates[2].prefix = '61a')),
      /rate_deck_rates\[\d+\]\.prefix must be digits/,
    );
    assert.match(
      refusal((d) => void (d.customer_trunk_rate_decks[0].rate_deck_id = 101)),
      /rate deck 101 is not a customer deck/,
    );
    assert.match(
      refusal((d) => void (d.carrier_trunks[0].currency = 'EUR' as 'AUD')),
      /carrier_trunks\[0\]\.currency is invalid/,
    );
    assert.match(
      refusal((d) => void (d.block_rules[1].scope_id = null)),
      /scope_id is required/,
    );
    assert.match(
      refusal((d) => void (d.sip_registrations[0].hash_algorithm = 'sha1')),
      /unknown hash_algorithm/,
    );
    assert.match(
      refusal((d) => void (d.exchange_rates[0].rate = '0')),
      /rate must be positive/,
    );
    assert.match(
      refusal((d) => void d.rate_deck_allowlist.push({ id: 99, rate_deck_id: 1, carrier_trunk_id: 77 })),
      /carrier trunk 77 does not exist/,
    );
    assert.match(
      refusal((d) => void d.customer_trunks.push({ ...d.customer_trunks[0] })),
      /duplicate id 10/,
    );
    assert.match(
      refusal((d) => void (d.rate_deck_rates[0].rate_type = 'per_second' as 'per_call')),
      /rate_type/,
    );
    assert.match(
      refusal((d) => void (d.rate_deck_rates[0].effective_at = 'yesterday')),
      /effective_at/,
    );
  });

  it('holds values to the rules the admin API applies (field-rules.ts), and names the row', () => {
    for (const rate of ['0', '0.000', '-0', '-0.000'])
      assert.match(
        refusal((d) => void (d.exchange_rates[2].rate = rate)),
        /exchange_rates 3: rate must be positive/,
      );
    assert.match(
      refusal((d) => void (d.sip_registrations[0].password_hash = 'abc123')),
      /sip_registrations \d+: password_hash must be 32 hex digits for MD5/,
    );
    assert.match(
      refusal((d) => void (d.sip_registrations[0].hash_algorithm = 'SHA-256')),
      /password_hash must be 64 hex digits for SHA-256/,
    );
    const result = validateSnapshot(routingTables((d) => void (d.customer_accounts[0].credit_limit = '-1')));
    assert.deepEqual(result.ok ? null : result.row, { table: 'customer_accounts', id: d0(), index: 0, field: 'credit_limit' });
    // What the node's ledger holds: a million as a credit limit, micro-unit precision.
    assert.deepEqual(
      validateSnapshot(
        routingTables((d) => {
          d.customer_accounts[0].credit_limit = '1000000';
          d.customer_accounts[0].warning_threshold = '999999999.123456';
          d.customer_trunks[0].credit_limit = '2500000.50';
        }),
      ),
      { ok: true },
    );
    assert.match(
      refusal((d) => void (d.customer_accounts[0].warning_threshold = '1.0000001')),
      /customer_accounts\[0\]\.warning_threshold is invalid/,
    );
  });

  it('refuses a missing table', () => {
    const tables = routingTables() as unknown as Record<string, unknown>;
    delete tables.failover_rules;
    const result = validateSnapshot(tables as never);
    assert.deepEqual(result, { ok: false, reason: 'table failover_rules is missing' });
  });
});

describe('snapshot compile', () => {
  it('keeps only active trunks of active accounts in the IP index and takes the newest active assignment', () => {
    const decoded = decodeSnapshot(
      encodeSnapshot(
        routingTables((d) => {
          d.customer_trunk_rate_decks.push({
            id: 9,
            customer_trunk_id: 10,
            rate_deck_id: 1,
            is_active: false,
            assigned_at: '2030-01-01T00:00:00Z',
          });
        }),
        1,
      ),
      0,
    );
    assert.ok(decoded.ok);
    const { compiled, transfer } = compileSnapshot(decoded.snapshot);
    assert.equal(compiled.customerTrunks.find((trunk) => trunk.id === 12)?.active, false);
    assert.equal(compiled.customerTrunks.find((trunk) => trunk.id === 10)?.sellDeck, compiled.deckById.get(1));
    assert.equal(compiled.counts.rate_rows, 14);
    assert.ok(transfer.length > 10, 'typed arrays are handed over, not copied');
    assert.deepEqual(
      compiled.carriers.map((carrier) => [carrier.id, carrier.eligibility]),
      [
        [20, 'ok'],
        [21, 'ok'],
        [22, 'ok'],
        [23, 'no_active_gateway'],
        [24, 'carrier_not_active'],
      ],
    );
  });
});
