/**
 * The config store's schema, as numbered migrations applied in order, each
 * once, in a transaction. Table and column names are the switch API's.
 * Money and rates are TEXT (exact decimal strings), times ISO 8601 UTC TEXT.
 *
 * One list for both engines: `sql` is SQLite's, and PostgreSQL runs it as
 * postgresSql() below translates it (the schema uses nothing but types that
 * differ), unless the migration gives `postgres`, its own text for PostgreSQL,
 * for SQL that differs beyond the types (see docs/operations.md, "Adding a
 * migration").
 */
export interface Migration {
  version: number;
  description: string;
  sql: string;
  /** PostgreSQL's text, when the translation of `sql` would not do. */
  postgres?: string;
}

const TIMESTAMPS = `created_at TEXT NOT NULL, updated_at TEXT NOT NULL`;

/** The columns of the tables migration 23's rebuild copies, as migrations 11 and 13 made them (none added since). */
const RETAIL_ACCOUNT_COLUMNS =
  'id, partner_product_id, account_code, external_user_id, requires_pin, pin_hash, status, deactivated_at, deactivation_reason, created_at, updated_at';
const CALL_TRANSLATION_COLUMNS = 'id, retail_account_id, partner_product_id, a_number, access_number, b_number, created_at, expires_at';

/** The centre's cdrs table's columns as migration 20 left them, which migration 21's rebuild copies. */
const CDR_TABLE_COLUMNS = [
  'id, sip_call_id, node, node_cdr_id, customer_account_id, customer_trunk_id, carrier_trunk_id, carrier_gateway_id, ani, dnis',
  'start_time, answer_time, end_time, duration_seconds, sip_response_code, billable_duration_customer, billable_duration_vendor',
  'customer_rate_deck_id, carrier_rate_deck_id, customer_cost, customer_currency, customer_decimal_precision',
  'customer_rounding_direction, vendor_cost, vendor_currency, vendor_decimal_precision, vendor_rounding_direction',
  'account_charge, account_currency, created_at, uncovered, debit_transaction_id',
].join(', ');

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'routing configuration tables',
    sql: `
      CREATE TABLE auth_ips (
        id INTEGER PRIMARY KEY, ip_address TEXT NOT NULL UNIQUE, description TEXT, is_active INTEGER NOT NULL, ${TIMESTAMPS});
      CREATE TABLE customer_accounts (
        id INTEGER PRIMARY KEY, name TEXT NOT NULL, username TEXT UNIQUE, status TEXT NOT NULL, currency TEXT NOT NULL,
        billing_mode TEXT NOT NULL, credit_limit TEXT, warning_threshold TEXT, auto_cutoff_enabled INTEGER NOT NULL,
        auto_cutoff_behaviour TEXT NOT NULL, gst_applicable INTEGER NOT NULL, gst_treatment TEXT, invoice_period_days INTEGER NOT NULL,
        payment_due_days INTEGER NOT NULL, ${TIMESTAMPS});
      CREATE TABLE customer_trunks (
        id INTEGER PRIMARY KEY, customer_account_id INTEGER NOT NULL REFERENCES customer_accounts(id), name TEXT NOT NULL,
        status TEXT NOT NULL, currency TEXT NOT NULL, cps_limit INTEGER NOT NULL, port_limit INTEGER NOT NULL,
        per_minute_rate_limit INTEGER NOT NULL, billing_mode TEXT NOT NULL, credit_limit TEXT, warning_threshold TEXT,
        auto_cutoff_enabled INTEGER NOT NULL, auto_cutoff_behaviour TEXT NOT NULL, tech_prefix TEXT, sip_trusted INTEGER NOT NULL,
        rtpengine_enabled INTEGER NOT NULL, billing_increment_initial INTEGER NOT NULL, billing_increment_step INTEGER NOT NULL,
        decimal_precision INTEGER NOT NULL, rounding_direction TEXT NOT NULL, gst_applicable INTEGER NOT NULL, gst_treatment TEXT, ${TIMESTAMPS});
      CREATE INDEX customer_trunks_account ON customer_trunks(customer_account_id);
      CREATE TABLE carrier_trunks (
        id INTEGER PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL, currency TEXT NOT NULL, cps_limit INTEGER NOT NULL,
        port_limit INTEGER NOT NULL, per_minute_rate_limit INTEGER NOT NULL, billing_mode TEXT NOT NULL, credit_limit TEXT,
        warning_threshold TEXT, auto_cutoff_enabled INTEGER NOT NULL, auto_cutoff_behaviour TEXT NOT NULL, tech_prefix TEXT,
        sip_trusted INTEGER NOT NULL, rtpengine_enabled INTEGER NOT NULL, multi_ip_mode TEXT NOT NULL,
        billing_increment_initial INTEGER NOT NULL, billing_increment_step INTEGER NOT NULL, decimal_precision INTEGER NOT NULL,
        rounding_direction TEXT NOT NULL, gst_applicable INTEGER NOT NULL, gst_treatment TEXT, ${TIMESTAMPS});
      CREATE TABLE carrier_trunk_ips (
        id INTEGER PRIMARY KEY, carrier_trunk_id INTEGER NOT NULL REFERENCES carrier_trunks(id), ip_address TEXT NOT NULL,
        port INTEGER NOT NULL, weight INTEGER NOT NULL, priority INTEGER NOT NULL, status TEXT NOT NULL, ${TIMESTAMPS});
      CREATE INDEX carrier_trunk_ips_trunk ON carrier_trunk_ips(carrier_trunk_id);
      CREATE TABLE carrier_sip_failover_rules (
        id INTEGER PRIMARY KEY, carrier_trunk_id INTEGER NOT NULL REFERENCES carrier_trunks(id), sip_code INTEGER NOT NULL,
        action TEXT NOT NULL, description TEXT, ${TIMESTAMPS}, UNIQUE (carrier_trunk_id, sip_code));
      CREATE TABLE trunk_ip_auth (
        id INTEGER PRIMARY KEY, trunk_type TEXT NOT NULL, trunk_id INTEGER NOT NULL, cidr TEXT NOT NULL, description TEXT, ${TIMESTAMPS});
      CREATE INDEX trunk_ip_auth_trunk ON trunk_ip_auth(trunk_type, trunk_id);
      CREATE TABLE trunk_sip_registrations (
        id INTEGER PRIMARY KEY, customer_trunk_id INTEGER NOT NULL REFERENCES customer_trunks(id), username TEXT NOT NULL,
        domain TEXT NOT NULL, password_hash TEXT NOT NULL, hash_algorithm TEXT NOT NULL, status TEXT NOT NULL, ${TIMESTAMPS},
        UNIQUE (username, domain));
      CREATE TABLE block_rules (
        id INTEGER PRIMARY KEY, scope TEXT NOT NULL, scope_id INTEGER, block_type TEXT NOT NULL, pattern TEXT NOT NULL,
        match_type TEXT NOT NULL, sip_response_code INTEGER NOT NULL, description TEXT, is_active INTEGER NOT NULL, ${TIMESTAMPS});
      CREATE TABLE rate_decks (
        id INTEGER PRIMARY KEY, name TEXT NOT NULL, deck_type TEXT NOT NULL, currency TEXT NOT NULL, description TEXT, ${TIMESTAMPS});
      CREATE TABLE rate_deck_rates (
        id INTEGER PRIMARY KEY, rate_deck_id INTEGER NOT NULL REFERENCES rate_decks(id), prefix TEXT NOT NULL,
        destination_name TEXT NOT NULL, rate_per_minute TEXT NOT NULL, rate_type TEXT NOT NULL, billing_increment_initial INTEGER,
        billing_increment_step INTEGER, effective_at TEXT NOT NULL, ${TIMESTAMPS}, UNIQUE (rate_deck_id, prefix, effective_at));
      CREATE TABLE customer_trunk_rate_decks (
        id INTEGER PRIMARY KEY, customer_trunk_id INTEGER NOT NULL REFERENCES customer_trunks(id),
        rate_deck_id INTEGER NOT NULL REFERENCES rate_decks(id), is_active INTEGER NOT NULL, assigned_at TEXT NOT NULL, superseded_at TEXT);
      CREATE INDEX customer_trunk_rate_decks_trunk ON customer_trunk_rate_decks(customer_trunk_id, is_active);
      CREATE TABLE carrier_trunk_rate_decks (
        id INTEGER PRIMARY KEY, carrier_trunk_id INTEGER NOT NULL REFERENCES carrier_trunks(id),
        rate_deck_id INTEGER NOT NULL REFERENCES rate_decks(id), is_active INTEGER NOT NULL, assigned_at TEXT NOT NULL, superseded_at TEXT);
      CREATE INDEX carrier_trunk_rate_decks_trunk ON carrier_trunk_rate_decks(carrier_trunk_id, is_active);
      CREATE TABLE rate_deck_carrier_allowlist (
        id INTEGER PRIMARY KEY, rate_deck_id INTEGER NOT NULL REFERENCES rate_decks(id),
        carrier_trunk_id INTEGER NOT NULL REFERENCES carrier_trunks(id), created_at TEXT NOT NULL, UNIQUE (rate_deck_id, carrier_trunk_id));
      CREATE TABLE lcr_config (
        id INTEGER PRIMARY KEY, rate_deck_id INTEGER REFERENCES rate_decks(id), block_if_cost_exceeds_sell INTEGER NOT NULL,
        acceptable_loss_pct TEXT NOT NULL, cache_ttl_seconds INTEGER NOT NULL, ${TIMESTAMPS});
      CREATE TABLE exchange_rates (
        id INTEGER PRIMARY KEY, from_currency TEXT NOT NULL, to_currency TEXT NOT NULL, rate TEXT NOT NULL, effective_at TEXT NOT NULL,
        created_by INTEGER, created_at TEXT NOT NULL);
      CREATE TABLE opensips_nodes (
        id INTEGER PRIMARY KEY, hostname TEXT NOT NULL UNIQUE, mi_socket_address TEXT NOT NULL, sidecar_address TEXT,
        region TEXT, status TEXT NOT NULL, last_seen_at TEXT, ${TIMESTAMPS});
      CREATE TABLE snapshot_versions (
        version INTEGER PRIMARY KEY, created_at TEXT NOT NULL, checksum TEXT NOT NULL, counts TEXT NOT NULL);
    `,
  },
  {
    version: 2,
    description: 'where each node keeps its drouting tables, and what was last loaded there',
    sql: `
      ALTER TABLE opensips_nodes ADD COLUMN drouting_db TEXT;
      ALTER TABLE opensips_nodes ADD COLUMN drouting_checksum TEXT;
    `,
  },
  {
    version: 3,
    description: 'balances and their transactions',
    sql: `
      CREATE TABLE balances (
        id INTEGER PRIMARY KEY, entity_type TEXT NOT NULL, entity_id INTEGER NOT NULL, balance TEXT NOT NULL, reserved TEXT NOT NULL,
        currency TEXT NOT NULL, updated_at TEXT NOT NULL, UNIQUE (entity_type, entity_id));
      CREATE TABLE balance_transactions (
        id INTEGER PRIMARY KEY, entity_type TEXT NOT NULL, entity_id INTEGER NOT NULL, transaction_type TEXT NOT NULL,
        amount TEXT NOT NULL, balance_after TEXT NOT NULL, currency TEXT NOT NULL, description TEXT, cdr_id INTEGER, call_id TEXT,
        created_at TEXT NOT NULL);
      CREATE INDEX balance_transactions_entity ON balance_transactions(entity_type, entity_id, id);
    `,
  },
  {
    version: 4,
    description: "credit leases held by nodes, settled CDRs, and each node's last money round",
    sql: `
      CREATE TABLE credit_leases (
        node TEXT NOT NULL, entity_type TEXT NOT NULL, entity_id INTEGER NOT NULL, amount TEXT NOT NULL, updated_at TEXT NOT NULL,
        PRIMARY KEY (node, entity_type, entity_id));
      CREATE TABLE node_money_rounds (node TEXT PRIMARY KEY, last_seq INTEGER NOT NULL, updated_at TEXT NOT NULL);
      CREATE TABLE cdrs (
        id INTEGER PRIMARY KEY, sip_call_id TEXT NOT NULL UNIQUE, node TEXT NOT NULL, node_cdr_id INTEGER NOT NULL,
        customer_account_id INTEGER NOT NULL, customer_trunk_id INTEGER NOT NULL, carrier_trunk_id INTEGER NOT NULL,
        carrier_gateway_id INTEGER NOT NULL, ani TEXT NOT NULL, dnis TEXT NOT NULL, start_time TEXT NOT NULL, answer_time TEXT,
        end_time TEXT NOT NULL, duration_seconds INTEGER NOT NULL, sip_response_code INTEGER,
        billable_duration_customer INTEGER NOT NULL, billable_duration_vendor INTEGER NOT NULL,
        customer_rate_deck_id INTEGER, carrier_rate_deck_id INTEGER,
        customer_cost TEXT NOT NULL, customer_currency TEXT NOT NULL, customer_decimal_precision INTEGER NOT NULL,
        customer_rounding_direction TEXT NOT NULL, vendor_cost TEXT NOT NULL, vendor_currency TEXT NOT NULL,
        vendor_decimal_precision INTEGER NOT NULL, vendor_rounding_direction TEXT NOT NULL,
        account_charge TEXT NOT NULL, account_currency TEXT NOT NULL, created_at TEXT NOT NULL);
      CREATE INDEX cdrs_start ON cdrs(start_time);
      CREATE INDEX cdrs_customer_trunk ON cdrs(customer_trunk_id, start_time);
      CREATE INDEX cdrs_carrier_trunk ON cdrs(carrier_trunk_id, start_time);
    `,
  },
  {
    version: 5,
    description: 'what CDRs charged beyond their reservations at the node, per CDR and per account',
    sql: `
      ALTER TABLE cdrs ADD COLUMN uncovered TEXT;
      CREATE TABLE account_overruns (
        entity_type TEXT NOT NULL, entity_id INTEGER NOT NULL, uncovered TEXT NOT NULL, cdrs INTEGER NOT NULL,
        last_call_id TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (entity_type, entity_id));
    `,
  },
  {
    version: 6,
    description: 'rate history: the prices a rate had before an edit, kept so that calls made then are rated at them',
    sql: `
      ALTER TABLE rate_deck_rates ADD COLUMN superseded_by INTEGER;
      ALTER TABLE rate_deck_rates ADD COLUMN superseded_at TEXT;
      CREATE INDEX rate_deck_rates_superseded_by ON rate_deck_rates(superseded_by) WHERE superseded_by IS NOT NULL;
    `,
  },
  {
    version: 7,
    description:
      "each node's credential (the SHA-256 of its secret, the push token, the previous pair during a rotation), and its last round's answer",
    // A table of its own, not columns of opensips_nodes: the admin API answers node rows whole, and these must
    // never be in an answer. id is the node's id; ON DELETE CASCADE takes the credential with its node.
    sql: `
      CREATE TABLE node_credentials (
        id INTEGER PRIMARY KEY REFERENCES opensips_nodes(id) ON DELETE CASCADE, secret_hash TEXT NOT NULL, push_token TEXT NOT NULL,
        previous_secret_hash TEXT, previous_push_token TEXT, issued_at TEXT NOT NULL);
      ALTER TABLE node_money_rounds ADD COLUMN last_digest TEXT;
      ALTER TABLE node_money_rounds ADD COLUMN last_reply TEXT;
    `,
  },
  {
    version: 8,
    description: "the customer portal: each account's twelve can_* permissions, its password's slow hash, its sessions",
    // The password hash and the sessions are tables of their own, not columns of customer_accounts: the admin
    // API answers account rows whole and the snapshot carries them to every node, and neither may ever hold
    // these. Sessions keep only the SHA-256 of their token (customer_auth_tokens, as the contract names it).
    // The permissions default to 0: an account created before the portal grants nothing until the operator says.
    sql: `
      ALTER TABLE customer_accounts ADD COLUMN can_view_trunks INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE customer_accounts ADD COLUMN can_create_trunks INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE customer_accounts ADD COLUMN can_modify_trunks INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE customer_accounts ADD COLUMN can_delete_trunks INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE customer_accounts ADD COLUMN can_view_trunk_ips INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE customer_accounts ADD COLUMN can_create_trunk_ips INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE customer_accounts ADD COLUMN can_modify_trunk_ips INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE customer_accounts ADD COLUMN can_delete_trunk_ips INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE customer_accounts ADD COLUMN can_view_sip_registrations INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE customer_accounts ADD COLUMN can_create_sip_registrations INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE customer_accounts ADD COLUMN can_modify_sip_registrations INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE customer_accounts ADD COLUMN can_delete_sip_registrations INTEGER NOT NULL DEFAULT 0;
      CREATE TABLE customer_portal_credentials (
        id INTEGER PRIMARY KEY REFERENCES customer_accounts(id) ON DELETE CASCADE, password_hash TEXT NOT NULL, updated_at TEXT NOT NULL);
      CREATE TABLE customer_auth_tokens (
        id INTEGER PRIMARY KEY, customer_account_id INTEGER NOT NULL REFERENCES customer_accounts(id) ON DELETE CASCADE,
        token_hash TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL, expires_at TEXT NOT NULL);
      CREATE INDEX customer_auth_tokens_account ON customer_auth_tokens(customer_account_id);
    `,
  },
  {
    version: 9,
    description: 'rate-deck updates: scheduled revisions of a deck, the rates each brings, and the customer trunks notified of each',
    // The rates an update brings are ordinary rate rows of its deck, written when the update is created with
    // its effective time, so that sidecars hold them ahead of it and switch on time; rate_deck_update_id
    // ties them to the update, so deleting a pending update takes them with it. A notification is one per
    // update and trunk: suspended_at says the workflow suspended it (only then does a download reinstate it).
    sql: `
      CREATE TABLE rate_deck_updates (
        id INTEGER PRIMARY KEY, rate_deck_id INTEGER NOT NULL REFERENCES rate_decks(id), update_type TEXT NOT NULL,
        status TEXT NOT NULL, effective_at TEXT NOT NULL, suspend_until_downloaded INTEGER NOT NULL, activated_at TEXT,
        superseded_at TEXT, created_by INTEGER, created_at TEXT NOT NULL);
      CREATE INDEX rate_deck_updates_due ON rate_deck_updates(status, effective_at);
      CREATE TABLE rate_deck_customer_notifications (
        id INTEGER PRIMARY KEY, rate_deck_update_id INTEGER NOT NULL REFERENCES rate_deck_updates(id),
        customer_trunk_id INTEGER NOT NULL REFERENCES customer_trunks(id), notified_at TEXT NOT NULL, suspended_at TEXT,
        downloaded_at TEXT, reinstated_at TEXT, UNIQUE (rate_deck_update_id, customer_trunk_id));
      CREATE INDEX rate_deck_customer_notifications_trunk ON rate_deck_customer_notifications(customer_trunk_id);
      ALTER TABLE rate_deck_rates ADD COLUMN rate_deck_update_id INTEGER REFERENCES rate_deck_updates(id);
      CREATE INDEX rate_deck_rates_update ON rate_deck_rates(rate_deck_update_id) WHERE rate_deck_update_id IS NOT NULL;
    `,
  },
  {
    version: 10,
    description: "the contract's spellings: hash_algorithm lowercase as its enum, node statuses within its enum",
    // Nodes were accepted as draining/offline (note 21, withdrawn by note 45): neither is synced, as a
    // suspended or disabled node is not, so the statuses keep their effect.
    sql: `
      UPDATE trunk_sip_registrations SET hash_algorithm = CASE upper(replace(replace(hash_algorithm, '-', ''), '_', ''))
        WHEN 'MD5' THEN 'md5' WHEN 'SHA256' THEN 'sha256' WHEN 'SHA512256' THEN 'sha512-256' ELSE hash_algorithm END;
      UPDATE opensips_nodes SET status = 'suspended' WHERE status = 'draining';
      UPDATE opensips_nodes SET status = 'disabled' WHERE status = 'offline';
    `,
  },
  {
    version: 11,
    description: 'the partner API: tenants, their products, retail accounts, and the answers kept for idempotent writes',
    // Retail accounts are a table of their own (not customer_accounts): they are owned by a partner tenant's
    // product, keyed by a 12-digit code, and their PIN hash must never be in an admin answer or a snapshot.
    // Their money is in balances with entity_type 'retail'. partner_idempotency holds each write's answer,
    // written in the same transaction as the change it describes.
    sql: `
      CREATE TABLE partner_tenants (
        id INTEGER PRIMARY KEY, tenant_id TEXT NOT NULL UNIQUE, name TEXT NOT NULL, status TEXT NOT NULL,
        operations TEXT NOT NULL, ${TIMESTAMPS});
      CREATE TABLE partner_products (
        id INTEGER PRIMARY KEY, partner_tenant_id INTEGER NOT NULL REFERENCES partner_tenants(id), product_id TEXT NOT NULL,
        currency TEXT NOT NULL, customer_trunk_id INTEGER REFERENCES customer_trunks(id), rate_deck_id INTEGER REFERENCES rate_decks(id),
        access_numbers TEXT, requires_pin INTEGER NOT NULL, status TEXT NOT NULL, ${TIMESTAMPS},
        UNIQUE (partner_tenant_id, product_id));
      CREATE TABLE retail_accounts (
        id INTEGER PRIMARY KEY, partner_product_id INTEGER NOT NULL REFERENCES partner_products(id), account_code TEXT NOT NULL UNIQUE,
        external_user_id TEXT, requires_pin INTEGER NOT NULL, pin_hash TEXT, status TEXT NOT NULL, deactivated_at TEXT,
        deactivation_reason TEXT, ${TIMESTAMPS}, UNIQUE (partner_product_id, external_user_id));
      CREATE TABLE partner_idempotency (
        tenant_id TEXT NOT NULL, operation TEXT NOT NULL, idempotency_key TEXT NOT NULL, request_digest TEXT NOT NULL,
        status INTEGER NOT NULL, body TEXT NOT NULL, transaction_id TEXT NOT NULL, created_at TEXT NOT NULL,
        PRIMARY KEY (tenant_id, operation, idempotency_key));
    `,
  },
  {
    version: 12,
    description: 'the delta log: every live change under one gap-free sequence, and the sequence each snapshot includes',
    // delta_sequence holds the last sequence handed out, moved in the transaction of the change it numbers:
    // a rolled-back change takes its number back, so the log never has a gap, and trimming old rows never
    // lets a number come round again. row is the changed row as the snapshot carries it (JSON), null for a
    // delete (sync/deltas/log.ts).
    sql: `
      CREATE TABLE delta_sequence (id INTEGER PRIMARY KEY CHECK (id = 1), last_seq INTEGER NOT NULL);
      INSERT INTO delta_sequence (id, last_seq) VALUES (1, 0);
      CREATE TABLE delta_log (
        seq INTEGER PRIMARY KEY, committed_at TEXT NOT NULL, table_name TEXT NOT NULL, op TEXT NOT NULL,
        row_id INTEGER NOT NULL, row TEXT);
      ALTER TABLE snapshot_versions ADD COLUMN delta_seq INTEGER;
    `,
  },
  {
    version: 13,
    description: "the partner API's calls: setup_call's number translations, and which settled CDRs a retail account was billed",
    // retail_call_cdrs links a settled CDR to the retail account it was billed to (call_history reads it), a
    // table of its own so the admin CDR resource keeps the switch contract's shape. call_translations are
    // setup_call's rows: (a_number, access_number) -> b_number for one account until expires_at; the id is
    // the contract's insertId.
    sql: `
      CREATE TABLE retail_call_cdrs (
        cdr_id INTEGER PRIMARY KEY REFERENCES cdrs(id), retail_account_id INTEGER NOT NULL REFERENCES retail_accounts(id),
        start_time TEXT NOT NULL);
      CREATE INDEX retail_call_cdrs_account ON retail_call_cdrs(retail_account_id, start_time);
      CREATE TABLE call_translations (
        id INTEGER PRIMARY KEY, retail_account_id INTEGER NOT NULL REFERENCES retail_accounts(id),
        partner_product_id INTEGER NOT NULL REFERENCES partner_products(id), a_number TEXT NOT NULL,
        access_number TEXT NOT NULL, b_number TEXT NOT NULL, created_at TEXT NOT NULL, expires_at TEXT NOT NULL);
      CREATE INDEX call_translations_caller ON call_translations(a_number, access_number, expires_at);
      CREATE INDEX call_translations_expiry ON call_translations(expires_at);
    `,
  },
  {
    version: 14,
    description: "a count of the rate rows' changes, on PostgreSQL, so that a snapshot reuses the rates it last read while none changed",
    // SQLite's data_version gives the config store this for free (config-store.ts); PostgreSQL has no
    // counterpart that also sees other servers' commits. A statement trigger moves the count in the writing
    // transaction, so a reader sees it move exactly when it sees the rows change. Nothing on SQLite.
    sql: 'SELECT 1',
    postgres: `
      CREATE TABLE rate_rows_changes (id INTEGER PRIMARY KEY CHECK (id = 1), changes BIGINT NOT NULL);
      INSERT INTO rate_rows_changes (id, changes) VALUES (1, 0);
      CREATE FUNCTION count_rate_rows_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN UPDATE rate_rows_changes SET changes = changes + 1 WHERE id = 1; RETURN NULL; END $$;
      CREATE TRIGGER rate_rows_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON rate_deck_rates
        FOR EACH STATEMENT EXECUTE FUNCTION count_rate_rows_change();
    `,
  },
  {
    version: 15,
    description: "each settled CDR names its round's debit row: one debit per account per money round, not one per CDR",
    // A round writes one debit row per account it bills (the charges' total), not one per CDR: the ledger rows were
    // most of a round's writes (docs/decisions.md). Each CDR keeps its own charge and names that row; NULL for a CDR
    // billed to no account here, and for those settled before this migration (each has a debit row of its own,
    // whose cdr_id names it). No index: nothing reads CDRs by it yet.
    sql: 'ALTER TABLE cdrs ADD COLUMN debit_transaction_id INTEGER;',
  },
  {
    version: 16,
    description: "no index of CDRs by carrier trunk: the CDR search finds a carrier's by start time",
    // Every money round inserts its CDRs into each index (issue 21), and this one cost about a fifth of the insert
    // (1.2-1.4 of 6-9 ms of server CPU per 400 CDRs, 500k-CDR table). PostgreSQL's planner did not take it for
    // the CDR search by carrier trunk, with or without a time range (EXPLAIN ANALYZE, 30 carriers): a carrier
    // carries a large share of the calls, so scanning cdrs_start back in time fills the page sooner. The
    // customer-trunk index stays: customer trunks are many, each a small share, and the planner uses it.
    sql: 'DROP INDEX cdrs_carrier_trunk;',
  },
  {
    version: 17,
    description: "credit leases found by the account they lease, not by a scan of every node's",
    // A top-up (partner API, admin) reads who holds leases of the account inside its write transaction, to tell
    // those nodes; on PostgreSQL that read runs under the account's row lock. The primary key leads with the node,
    // so without this the read scans every lease of every node (nodes x accounts rows).
    sql: 'CREATE INDEX credit_leases_entity ON credit_leases (entity_type, entity_id);',
  },
  {
    version: 18,
    description:
      "a rate row's deck checked once per statement on PostgreSQL, not once per row: half the server's work in a rate sheet's import",
    // The foreign key's check is a query per row: 150k rows of one deck took 0.55 s of the server's 1.3 s
    // (bench/rate-import-phases.ts). A statement trigger checks every written row's deck in one query, and
    // first updates each deck it names (an update, not a lock): a deletion of the deck that waits for that
    // update then finds the rows (READ COMMITTED) or fails to serialize (REPEATABLE READ), and a deletion
    // that went first leaves the check without the deck, so the write fails. The deck's side keeps the
    // key's refusal: a deck, or its id, goes only while no rate row names it. The error is the key's
    // (foreign_key_violation, its constraint's name). SQLite keeps its key: its check is an index probe.
    sql: 'SELECT 1',
    postgres: `
      ALTER TABLE rate_deck_rates DROP CONSTRAINT rate_deck_rates_rate_deck_id_fkey;
      -- The foreign key's own error, for both checks below: the admin API maps it to still_referenced.
      CREATE FUNCTION refuse_missing_rate_deck(deck BIGINT) RETURNS void LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION 'insert or update on table "rate_deck_rates" violates foreign key constraint "rate_deck_rates_rate_deck_id_fkey"'
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'rate_deck_rates_rate_deck_id_fkey',
              DETAIL = format('Key (rate_deck_id)=(%s) is not present in table "rate_decks".', deck);
        END $$;
      CREATE FUNCTION check_rate_rows_deck() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE missing BIGINT;
        BEGIN
          UPDATE rate_decks SET id = id WHERE id IN (SELECT DISTINCT rate_deck_id FROM written);
          SELECT w.rate_deck_id INTO missing FROM written w WHERE NOT EXISTS (SELECT 1 FROM rate_decks d WHERE d.id = w.rate_deck_id) LIMIT 1;
          IF FOUND THEN
            PERFORM refuse_missing_rate_deck(missing);
          END IF;
          RETURN NULL;
        END $$;
      CREATE TRIGGER rate_rows_deck_inserted AFTER INSERT ON rate_deck_rates REFERENCING NEW TABLE AS written
        FOR EACH STATEMENT EXECUTE FUNCTION check_rate_rows_deck();
      -- A row moved to another deck, checked as it moves: an update that keeps the deck (an overwrite's,
      -- a revision's) costs nothing, as it cost the foreign key nothing.
      CREATE FUNCTION check_moved_rate_row_deck() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          UPDATE rate_decks SET id = id WHERE id = NEW.rate_deck_id;
          IF NOT FOUND THEN
            PERFORM refuse_missing_rate_deck(NEW.rate_deck_id);
          END IF;
          RETURN NULL;
        END $$;
      CREATE TRIGGER rate_row_deck_moved AFTER UPDATE OF rate_deck_id ON rate_deck_rates
        FOR EACH ROW WHEN (NEW.rate_deck_id IS DISTINCT FROM OLD.rate_deck_id) EXECUTE FUNCTION check_moved_rate_row_deck();
      CREATE FUNCTION refuse_named_deck_removal() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP = 'TRUNCATE' THEN
            IF EXISTS (SELECT 1 FROM rate_deck_rates) THEN
              RAISE EXCEPTION 'cannot truncate table "rate_decks": rate_deck_rates names its rows'
                USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'rate_deck_rates_rate_deck_id_fkey';
            END IF;
          ELSIF (TG_OP = 'DELETE' OR NEW.id <> OLD.id) AND EXISTS (SELECT 1 FROM rate_deck_rates WHERE rate_deck_id = OLD.id) THEN
            RAISE EXCEPTION 'update or delete on table "rate_decks" violates foreign key constraint "rate_deck_rates_rate_deck_id_fkey" on table "rate_deck_rates"'
              USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'rate_deck_rates_rate_deck_id_fkey',
                DETAIL = format('Key (id)=(%s) is still referenced from table "rate_deck_rates".', OLD.id);
          END IF;
          RETURN NULL;
        END $$;
      CREATE TRIGGER rate_deck_named_by_rates AFTER DELETE OR UPDATE OF id ON rate_decks
        FOR EACH ROW EXECUTE FUNCTION refuse_named_deck_removal();
      CREATE TRIGGER rate_decks_named_by_rates BEFORE TRUNCATE ON rate_decks
        FOR EACH STATEMENT EXECUTE FUNCTION refuse_named_deck_removal();
    `,
  },
  {
    version: 19,
    description: "CDRs found by customer account and start time: the portal's CDR pages and the console's account view",
    // The CDR search by account (every portal request names the customer's own: sync/portal/access-rules.ts) had
    // no index: it walked cdrs_start back in time, filtering, through every other account's calls until it had
    // a page, so a small account's page read most of the table. Money rounds pay for it on each CDR insert
    // (docs/performance-log.md, 2026-12-07, issue 21: the insert cost measured with and without). Built in the
    // migration's transaction: on a large PostgreSQL cdrs table, CDR inserts wait for the build.
    sql: 'CREATE INDEX cdrs_customer_account ON cdrs(customer_account_id, start_time);',
  },
  {
    version: 20,
    description: "an account's transaction rows listed in the order they were applied, by a number each takes as it is posted",
    // A money round's debit rows take their ids with the round's CDRs, which now go in before the round locks its
    // balances (issue 21: the CDR insert out of the locks other nodes' rounds wait on), so an id no longer says
    // where a row comes in its account's list. `posted` does: taken as each row is written, under its balance's
    // lock (sync/ledger/steps.ts recordTransactions). The rows written before are posted as their ids, which were
    // taken under the lock until now. The list's index moves to it.
    sql: `
      ALTER TABLE balance_transactions ADD COLUMN posted INTEGER;
      UPDATE balance_transactions SET posted = id;
      CREATE INDEX balance_transactions_posted ON balance_transactions(entity_type, entity_id, posted);
      DROP INDEX balance_transactions_entity;
    `,
  },
  {
    version: 21,
    description: "a settled CDR is known by its Call-ID and its call's start: a Call-ID reused by a later call is a new call, billed",
    // Under the Call-ID alone, a carrier's (or a broken UA's) Call-ID used again by another call, on another node or
    // on the same one after its CDR was pruned there, was taken for a resend of the first call and billed nothing
    // (docs/contract-notes.md, note 60). A resend is the same call again: same Call-ID, same start as the node wrote
    // it. SQLite cannot drop a UNIQUE written in the column's definition, so the table is rebuilt with every
    // column, id and index; retail_call_cdrs names CDRs by id (a foreign key, enforced here), so its rows step
    // aside while the table they name is dropped and come back once the rebuilt one has the same ids.
    sql: `
      CREATE TEMP TABLE retail_call_cdrs_kept AS SELECT cdr_id, retail_account_id, start_time FROM retail_call_cdrs;
      DELETE FROM retail_call_cdrs;
      CREATE TABLE cdrs_rekeyed (
        id INTEGER PRIMARY KEY, sip_call_id TEXT NOT NULL, node TEXT NOT NULL, node_cdr_id INTEGER NOT NULL,
        customer_account_id INTEGER NOT NULL, customer_trunk_id INTEGER NOT NULL, carrier_trunk_id INTEGER NOT NULL,
        carrier_gateway_id INTEGER NOT NULL, ani TEXT NOT NULL, dnis TEXT NOT NULL, start_time TEXT NOT NULL, answer_time TEXT,
        end_time TEXT NOT NULL, duration_seconds INTEGER NOT NULL, sip_response_code INTEGER,
        billable_duration_customer INTEGER NOT NULL, billable_duration_vendor INTEGER NOT NULL,
        customer_rate_deck_id INTEGER, carrier_rate_deck_id INTEGER,
        customer_cost TEXT NOT NULL, customer_currency TEXT NOT NULL, customer_decimal_precision INTEGER NOT NULL,
        customer_rounding_direction TEXT NOT NULL, vendor_cost TEXT NOT NULL, vendor_currency TEXT NOT NULL,
        vendor_decimal_precision INTEGER NOT NULL, vendor_rounding_direction TEXT NOT NULL,
        account_charge TEXT NOT NULL, account_currency TEXT NOT NULL, created_at TEXT NOT NULL, uncovered TEXT,
        debit_transaction_id INTEGER, UNIQUE (sip_call_id, start_time));
      INSERT INTO cdrs_rekeyed (${CDR_TABLE_COLUMNS}) SELECT ${CDR_TABLE_COLUMNS} FROM cdrs;
      DROP TABLE cdrs;
      ALTER TABLE cdrs_rekeyed RENAME TO cdrs;
      CREATE INDEX cdrs_start ON cdrs(start_time);
      CREATE INDEX cdrs_customer_trunk ON cdrs(customer_trunk_id, start_time);
      CREATE INDEX cdrs_customer_account ON cdrs(customer_account_id, start_time);
      INSERT INTO retail_call_cdrs (cdr_id, retail_account_id, start_time) SELECT cdr_id, retail_account_id, start_time FROM retail_call_cdrs_kept;
      DROP TABLE retail_call_cdrs_kept;
    `,
    // The key's constraint by the name PostgreSQL gave the column's UNIQUE (migration 4); the new one's index
    // still leads with the Call-ID, so the CDR search by Call-ID keeps an index.
    postgres: `
      ALTER TABLE cdrs DROP CONSTRAINT cdrs_sip_call_id_key;
      ALTER TABLE cdrs ADD CONSTRAINT cdrs_sip_call_id_start_time_key UNIQUE (sip_call_id, start_time);
    `,
  },
  {
    version: 22,
    description: 'sync lead terms: each holding of the sync lock numbered, the fence of the node databases drouting is written into',
    // A control plane that took the sync lock (store/pg-sync-lock.ts) takes the next number here; its drouting
    // writes carry it, and a node database that a later holder has written refuses an earlier one's
    // (sync/drouting/writer.ts SYNC_TERM_ROW). Unused on SQLite, where one process holds the store.
    sql: 'CREATE TABLE sync_lead_terms (id INTEGER PRIMARY KEY, taken_at TEXT NOT NULL);',
  },
  {
    version: 23,
    description: "a CLI is unique among a product's live accounts: a deactivated account's no longer keeps it from a new account",
    // The key over every account of a product kept a closed account's CLI (external_user_id) for good: its owner
    // could never open an account again with their own number (create_account and change_cli: 409). The
    // deactivated account keeps the value (its history still reads it); the key holds only while
    // deactivated_at is NULL (only delete_account sets it, and nothing clears it). SQLite cannot drop a UNIQUE
    // written in the table's definition, so the table is rebuilt with every column and id; retail_call_cdrs and
    // call_translations name accounts by id (foreign keys, enforced here, and foreign_keys cannot be switched
    // off inside the migration's transaction), so their rows step aside while the table they name is dropped
    // and come back once the rebuilt one has the same ids. account_code's UNIQUE is rebuilt with the table.
    sql: `
      CREATE TEMP TABLE retail_call_cdrs_kept AS SELECT cdr_id, retail_account_id, start_time FROM retail_call_cdrs;
      CREATE TEMP TABLE call_translations_kept AS SELECT ${CALL_TRANSLATION_COLUMNS} FROM call_translations;
      DELETE FROM retail_call_cdrs;
      DELETE FROM call_translations;
      CREATE TABLE retail_accounts_rekeyed (
        id INTEGER PRIMARY KEY, partner_product_id INTEGER NOT NULL REFERENCES partner_products(id), account_code TEXT NOT NULL UNIQUE,
        external_user_id TEXT, requires_pin INTEGER NOT NULL, pin_hash TEXT, status TEXT NOT NULL, deactivated_at TEXT,
        deactivation_reason TEXT, ${TIMESTAMPS});
      INSERT INTO retail_accounts_rekeyed (${RETAIL_ACCOUNT_COLUMNS}) SELECT ${RETAIL_ACCOUNT_COLUMNS} FROM retail_accounts;
      DROP TABLE retail_accounts;
      ALTER TABLE retail_accounts_rekeyed RENAME TO retail_accounts;
      CREATE UNIQUE INDEX retail_accounts_live_cli ON retail_accounts(partner_product_id, external_user_id) WHERE deactivated_at IS NULL;
      INSERT INTO retail_call_cdrs (cdr_id, retail_account_id, start_time) SELECT cdr_id, retail_account_id, start_time FROM retail_call_cdrs_kept;
      INSERT INTO call_translations (${CALL_TRANSLATION_COLUMNS}) SELECT ${CALL_TRANSLATION_COLUMNS} FROM call_translations_kept;
      DROP TABLE retail_call_cdrs_kept;
      DROP TABLE call_translations_kept;
    `,
    // The key's constraint by the name PostgreSQL gave the table's UNIQUE (migration 11).
    postgres: `
      ALTER TABLE retail_accounts DROP CONSTRAINT retail_accounts_partner_product_id_external_user_id_key;
      CREATE UNIQUE INDEX retail_accounts_live_cli ON retail_accounts(partner_product_id, external_user_id) WHERE deactivated_at IS NULL;
    `,
  },
  {
    version: 24,
    description: 'the last snapshot version handed out, moved by the database so versions grow across control planes',
    // On PostgreSQL a sync takes its snapshot's version here in one statement, from the server's clock and the
    // last version handed out (store/pg-config-store.ts nextSnapshotVersion): each centre's own clock let one
    // running ahead number an older snapshot above a newer one. Starts at the last version recorded. Unused on
    // SQLite, where one process holds the store.
    sql: `
      CREATE TABLE snapshot_version_sequence (id INTEGER PRIMARY KEY CHECK (id = 1), last_version INTEGER NOT NULL);
      INSERT INTO snapshot_version_sequence (id, last_version) SELECT 1, COALESCE(MAX(version), 0) FROM snapshot_versions;
    `,
  },
];

/**
 * A migration's SQL for PostgreSQL. SQLite's `INTEGER PRIMARY KEY` numbers new rows itself: PostgreSQL's
 * identity column does so too and, BY DEFAULT, still takes the ids the seed and the admin API's imports give.
 * Integers are BIGINT (read back as numbers: sync/store/pg-database.ts), as SQLite's are 64-bit. Text
 * compares byte by byte ("C"), as SQLite's does: lists order, and UNIQUE keys match, as they do there.
 */
export function postgresSql(migration: Migration): string {
  if (migration.postgres !== undefined) return migration.postgres;
  return migration.sql
    .replace(/\bINTEGER PRIMARY KEY\b/g, 'BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY')
    .replace(/\bINTEGER\b/g, 'BIGINT')
    .replace(/\bTEXT\b/g, 'TEXT COLLATE "C"');
}
