/**
 * Versioned schema migrations of the Postgres store: numbered, each applied once in its own
 * transaction and recorded in `schema_migrations`, under a session advisory lock so that several
 * instances starting at once (or `mandate authority migrate` next to a running fleet) apply each
 * migration exactly once. Running it again is a no-op. A database whose schema is newer than this
 * package is refused (an older binary must not write to a newer schema).
 */
import { MandateError } from '@mandate/core'
import pg from 'pg'
import { storeError } from './errors.js'
import { connectClient } from './pool_client.js'

/** Advisory lock keys (two 32-bit halves: "mndt" and a purpose). */
export const LOCK_NAMESPACE = 0x6d6e6474
export const MIGRATION_LOCK = 1
export const AUDIT_CHAIN_LOCK = 2
export const SIGNING_KEY_LOCK = 3

interface Migration {
  version: number
  name: string
  sql: string
}

const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'authority state: principals, mandates, revocations, approvals, audit chain, signed head, signing keys, outbox',
    sql: `
CREATE TABLE agents (
  did TEXT PRIMARY KEY, jkt TEXT NOT NULL, name TEXT NOT NULL, owner TEXT, role TEXT NOT NULL, metadata TEXT,
  disabled BOOLEAN NOT NULL DEFAULT FALSE, created_at BIGINT NOT NULL, disabled_at BIGINT, disabled_reason TEXT,
  revoked_at BIGINT, revoked_reason TEXT);
CREATE TABLE mandates (
  id BIGSERIAL UNIQUE, jti TEXT PRIMARY KEY, parent TEXT, txn TEXT NOT NULL, subject TEXT NOT NULL, holder TEXT NOT NULL,
  grantor TEXT, kind TEXT NOT NULL, depth INTEGER NOT NULL, iat BIGINT NOT NULL, exp BIGINT NOT NULL,
  token_hash TEXT NOT NULL UNIQUE, max_uses INTEGER, uses INTEGER NOT NULL DEFAULT 0, claims TEXT NOT NULL);
CREATE INDEX mandates_parent ON mandates(parent);
CREATE INDEX mandates_txn ON mandates(txn, id);
CREATE INDEX mandates_kind ON mandates(kind, id);
CREATE INDEX mandates_subject ON mandates(subject);
CREATE INDEX mandates_holder ON mandates(holder);
CREATE INDEX mandates_grantor ON mandates(grantor) WHERE grantor IS NOT NULL;
CREATE TABLE revocations (
  seq BIGSERIAL PRIMARY KEY, kind TEXT NOT NULL, id TEXT NOT NULL, at BIGINT NOT NULL, reason TEXT, by_did TEXT,
  UNIQUE(kind, id));
CREATE TABLE approvals (
  cursor BIGSERIAL UNIQUE, id TEXT PRIMARY KEY, status TEXT NOT NULL, requested_by TEXT NOT NULL, parent TEXT NOT NULL,
  subject TEXT NOT NULL, txn TEXT NOT NULL, actor_chain TEXT NOT NULL, audience TEXT NOT NULL, tool TEXT NOT NULL,
  args_digest TEXT NOT NULL, arguments TEXT, reason TEXT NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL,
  decided_by TEXT, decided_at BIGINT, decision_reason TEXT, used BOOLEAN NOT NULL DEFAULT FALSE);
CREATE INDEX approvals_status ON approvals(status, expires_at);
CREATE INDEX approvals_txn ON approvals(txn);
CREATE INDEX approvals_requested_by ON approvals(requested_by);
CREATE TABLE audit (
  seq BIGINT PRIMARY KEY, time BIGINT NOT NULL, type TEXT NOT NULL, fields TEXT NOT NULL, prev TEXT NOT NULL,
  hash TEXT NOT NULL, txn TEXT, agent TEXT, subject TEXT, tool TEXT, jti TEXT, decision TEXT,
  call BOOLEAN NOT NULL DEFAULT FALSE);
CREATE INDEX audit_txn ON audit(txn, seq);
CREATE INDEX audit_agent ON audit(agent, seq);
CREATE INDEX audit_subject ON audit(subject, seq);
CREATE INDEX audit_time ON audit(time);
CREATE INDEX audit_type ON audit(type, seq);
CREATE INDEX audit_tool ON audit(tool, seq) WHERE tool IS NOT NULL;
CREATE INDEX audit_jti ON audit(jti) WHERE jti IS NOT NULL;
CREATE INDEX audit_decision ON audit(decision, seq) WHERE decision IS NOT NULL;
CREATE INDEX audit_calls ON audit(seq) WHERE call;
CREATE TABLE audit_head (
  id INTEGER PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL, hash TEXT NOT NULL, time BIGINT NOT NULL, jws TEXT NOT NULL);
CREATE TABLE signing_keys (
  kid TEXT PRIMARY KEY, private_jwk TEXT NOT NULL, created_at BIGINT NOT NULL, retired_at BIGINT);
CREATE TABLE outbox (
  id BIGSERIAL PRIMARY KEY, endpoint TEXT NOT NULL, seq BIGINT NOT NULL, event TEXT NOT NULL, message_id TEXT NOT NULL,
  order_key TEXT, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_at BIGINT NOT NULL,
  created_at BIGINT NOT NULL, body TEXT, last_error TEXT, last_status INTEGER, last_failure_at BIGINT, delivered_at BIGINT);
CREATE INDEX outbox_pending ON outbox(status, next_at);
CREATE INDEX outbox_order ON outbox(endpoint, order_key, status);
`,
  },
  {
    version: 2,
    name: 'outbox delivery leases: one instance delivers a row at a time',
    sql: `ALTER TABLE outbox ADD COLUMN lease_until BIGINT;`,
  },
  {
    version: 3,
    name: 'mandate_issue_many(): the issuances of a group commit, each in its own subtransaction, in one round trip',
    // Writes hold the audit chain lock, so the round trips made under it bound the throughput of
    // the whole fleet: the issuances (the hot path) of one group are one call, whatever their
    // number. Each runs in a BEGIN ... EXCEPTION block, a subtransaction: a refusal (or any error)
    // rolls back exactly its own changes. Their audit records follow in one multi-row insert.
    sql: `
CREATE FUNCTION mandate_issue_many(p_ops JSONB) RETURNS TEXT[] LANGUAGE plpgsql AS $fn$
DECLARE
  op JSONB;
  j TEXT;
  result TEXT[] := '{}';
BEGIN
  FOR op IN SELECT value FROM jsonb_array_elements(p_ops) LOOP
    IF (op->>'rev')::BOOLEAN AND EXISTS (SELECT 1 FROM revocations WHERE (kind = 'task' AND id = op->>'rtxn')
        OR (kind = 'mandate' AND id IN (SELECT jsonb_array_elements_text(op->'rids')))
        OR (kind = 'agent' AND id IN (SELECT jsonb_array_elements_text(op->'ractors')))) THEN
      result := result || 'revoked'::TEXT;
      CONTINUE;
    END IF;
    BEGIN
      FOR j IN SELECT jsonb_array_elements_text(op->'uses') LOOP
        UPDATE mandates SET uses = uses + 1 WHERE jti = j AND (max_uses IS NULL OR uses < max_uses);
        IF NOT FOUND THEN RAISE EXCEPTION USING ERRCODE = 'MD001', MESSAGE = j; END IF;
      END LOOP;
      IF op->>'approval' IS NOT NULL THEN
        UPDATE approvals SET used = TRUE WHERE id = op->>'approval' AND status = 'approved' AND NOT used;
        IF NOT FOUND THEN RAISE EXCEPTION USING ERRCODE = 'MD002', MESSAGE = 'approval'; END IF;
      END IF;
      INSERT INTO mandates(jti, parent, txn, subject, holder, grantor, kind, depth, iat, exp, token_hash, max_uses, uses, claims)
        VALUES (op->>'jti', op->>'parent', op->>'txn', op->>'subject', op->>'holder', op->>'grantor', op->>'kind', (op->>'depth')::INTEGER,
          (op->>'iat')::BIGINT, (op->>'exp')::BIGINT, op->>'token_hash', (op->>'max_uses')::INTEGER, 0, op->>'claims')
        ON CONFLICT DO NOTHING;
      IF NOT FOUND THEN RAISE EXCEPTION USING ERRCODE = 'MD003', MESSAGE = 'duplicate'; END IF;
      result := result || 'ok'::TEXT;
    EXCEPTION
      WHEN SQLSTATE 'MD001' THEN result := result || ('uses_exhausted:' || SQLERRM);
      WHEN SQLSTATE 'MD002' THEN result := result || 'approval_unusable'::TEXT;
      WHEN SQLSTATE 'MD003' THEN result := result || 'duplicate'::TEXT;
      WHEN OTHERS THEN result := result || ('error:' || SQLSTATE);
    END;
  END LOOP;
  RETURN result;
END
$fn$;
`,
  },
  {
    version: 4,
    name: 'federation: the stored federation rules, and the workload binding and expiry of agents',
    // `pos` keeps creation order (ids are chosen by admins); agents keep what they hold (NULL: unbound, no expiry)
    sql: `
CREATE TABLE federation_rules (
  pos BIGSERIAL UNIQUE, id TEXT PRIMARY KEY, rule TEXT NOT NULL, created_at BIGINT NOT NULL, created_by TEXT);
ALTER TABLE agents ADD COLUMN binding TEXT;
ALTER TABLE agents ADD COLUMN expires_at BIGINT;
`,
  },
]

/** The schema version this package writes. */
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version

export interface MigrationResult {
  /** The schema version of the database now. */
  version: number
  /** Versions applied by this call (empty when it was up to date). */
  applied: number[]
}

async function appliedVersions(client: pg.PoolClient | pg.Pool): Promise<number[]> {
  const r = await client.query<{ version: number }>(`SELECT version FROM schema_migrations ORDER BY version`).catch((err: { code?: string }) => {
    if (err?.code === '42P01') return { rows: [] as Array<{ version: number }> } // undefined_table: nothing applied yet
    throw err
  })
  return r.rows.map((row) => Number(row.version))
}

/** The schema version of the database (0 when never migrated). */
export async function schemaVersion(pool: pg.Pool): Promise<number> {
  try {
    const v = await appliedVersions(pool)
    return v.length ? Math.max(...v) : 0
  } catch (err) {
    throw storeError(err, 'reading the schema version')
  }
}

/** Options of {@link migrate}. */
export interface MigrateOptions {
  /**
   * How long to wait for the migration lock (ms) when another process is migrating. Beyond it the
   * call fails STORE_UNAVAILABLE ("another migration is running") instead of waiting for ever behind
   * a stuck or abandoned migration. Default 60 000.
   */
  lockTimeoutMs?: number
}

/**
 * Bring the database's schema up to SCHEMA_VERSION (`mandate authority migrate`). Idempotent and
 * safe to run from several processes at once. `target`: a connection string or a `pg.Pool` (not
 * ended here). STORE_UNAVAILABLE when the database cannot be reached or another migration holds
 * the lock beyond `lockTimeoutMs`; CONFIG_INVALID when its schema is newer than this package.
 */
export async function migrate(target: string | pg.Pool, options: MigrateOptions = {}): Promise<MigrationResult> {
  const lockTimeoutMs = options.lockTimeoutMs ?? 60_000
  if (!Number.isSafeInteger(lockTimeoutMs) || lockTimeoutMs < 1) throw new MandateError('CONFIG_INVALID', 'lockTimeoutMs must be a positive integer')
  const own = typeof target === 'string'
  const pool = own ? new pg.Pool({ connectionString: target, max: 1, connectionTimeoutMillis: 10_000 }) : target
  if (own) pool.on('error', () => undefined)
  let client: pg.PoolClient | undefined
  let broken: unknown
  try {
    client = await connectClient(pool, (err: Error) => void (broken = err))
    // pg_advisory_lock obeys lock_timeout: a bounded wait, then 55P03 (reset before the DDL runs)
    await client.query(`SET lock_timeout = ${lockTimeoutMs}`)
    try {
      await client.query('SELECT pg_advisory_lock($1, $2)', [LOCK_NAMESPACE, MIGRATION_LOCK])
    } catch (err) {
      if ((err as { code?: unknown })?.code !== '55P03') throw err
      throw new MandateError('STORE_UNAVAILABLE', `another migration is running: the migration lock was not free within ${lockTimeoutMs} ms; retry when it has finished (or end the stuck session)`, { cause: err })
    }
    try {
      await client.query('RESET lock_timeout')
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`)
      const done = new Set(await appliedVersions(client))
      const newest = Math.max(0, ...done)
      if (newest > SCHEMA_VERSION) {
        throw new MandateError('CONFIG_INVALID', `the database schema (version ${newest}) is newer than this @mandate/postgres (version ${SCHEMA_VERSION}); upgrade the Authority`)
      }
      const applied: number[] = []
      for (const m of MIGRATIONS) {
        if (done.has(m.version)) continue
        await client.query('BEGIN')
        try {
          await client.query(m.sql)
          await client.query('INSERT INTO schema_migrations(version, name) VALUES ($1, $2)', [m.version, m.name])
          await client.query('COMMIT')
        } catch (err) {
          await client.query('ROLLBACK').catch(() => undefined)
          throw err
        }
        applied.push(m.version)
      }
      return { version: SCHEMA_VERSION, applied }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1, $2)', [LOCK_NAMESPACE, MIGRATION_LOCK]).catch((err: unknown) => void (broken = err))
    }
  } catch (err) {
    broken = err
    throw storeError(err, 'migrating the schema')
  } finally {
    client?.release(broken instanceof Error ? broken : undefined)
    if (own) await pool.end().catch(() => undefined)
  }
}
