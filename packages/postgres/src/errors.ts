/**
 * Mapping of `pg` failures onto typed Mandate errors. A database that cannot be reached, a connection
 * lost mid-transaction, a server shutting down, a lock or statement timeout: STORE_UNAVAILABLE (HTTP
 * 503, retry later; the transaction was rolled back). Anything else the database refuses is
 * STORE_ERROR (500). Messages never carry SQL parameters (they may hold claims or key material).
 */
import { MandateError } from '@mandate/core'

const TRANSIENT_ERRNO = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ECONNABORTED'])
/** SQLSTATE classes/codes that mean "not now" rather than "never". */
// 25006 read_only_sql_transaction: a hot standby, or a primary during failover (retry elsewhere, later)
const TRANSIENT_SQLSTATE = /^(08|53|57P0|57014|55P03|40001|40P01|25P03|25006)/
// "Query read timeout": the client-side query_timeout (the server stopped answering)
const TRANSIENT_MESSAGE = /connection terminated|connection error|timeout exceeded when trying to connect|not queryable|Connection refused|server closed the connection|Query read timeout|the database system is (starting up|shutting down|in recovery mode)/i

/** Whether `err` says the database is unreachable or the connection broke (the client is unusable). */
export function isTransient(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false
  const e = err as { code?: unknown; message?: unknown; errors?: unknown }
  if (typeof e.code === 'string' && (TRANSIENT_ERRNO.has(e.code) || TRANSIENT_SQLSTATE.test(e.code))) return true
  if (Array.isArray(e.errors) && e.errors.some(isTransient)) return true // AggregateError of a dual-stack connect
  return typeof e.message === 'string' && TRANSIENT_MESSAGE.test(e.message)
}

/** A MandateError for any failure of a database call (MandateErrors pass through). */
export function storeError(err: unknown, what: string): MandateError {
  if (MandateError.is(err)) return err
  const sqlstate = (err as { code?: unknown } | null)?.code
  if (sqlstate === '22021' || sqlstate === '22P05') {
    // text Postgres cannot store (a NUL character): refused as input, nothing written
    return new MandateError('INVALID_REQUEST', `a value in ${what} holds a character the store cannot keep (NUL)`, { cause: err })
  }
  if (isTransient(err)) return new MandateError('STORE_UNAVAILABLE', `the Postgres store is unavailable (${what}); nothing was written, retry later`, { cause: err })
  const code = typeof (err as { code?: unknown })?.code === 'string' ? String((err as { code: string }).code).slice(0, 8) : 'unknown'
  return new MandateError('STORE_ERROR', `the Postgres store refused ${what} (SQLSTATE ${code})`, { cause: err, detail: { sqlstate: code } })
}
