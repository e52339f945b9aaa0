/**
 * The SQLite driver: Node's built-in `node:sqlite` (DatabaseSync), loaded once here.
 *
 * Built in since Node 22.13 (this package's floor), so installing the Authority compiles nothing and
 * the database binding is not tied to one Node ABI (bench/sqlite_driver.bench.ts measured it against
 * better-sqlite3 on the store's workload). Some Node lines (22.x here) emit
 * `ExperimentalWarning: SQLite is an experimental feature` when the module first loads: every user
 * of the Authority would see that line on stderr for a module they never chose, and it says nothing
 * they can act on. Exactly that one warning is dropped, only while the module loads; every other
 * warning (and that one from any later load elsewhere) passes through unchanged.
 */
import { createRequire } from 'node:module'
import type * as NodeSqlite from 'node:sqlite'

export type { DatabaseSync as SqliteDatabase, StatementSync as SqliteStatement } from 'node:sqlite'

function isSqliteExperimentalWarning(warning: unknown, type: unknown): boolean {
  const message = warning instanceof Error ? warning.message : warning
  const name = warning instanceof Error ? warning.name : typeof type === 'string' ? type : (type as { type?: unknown } | undefined)?.type
  return name === 'ExperimentalWarning' && typeof message === 'string' && message.startsWith('SQLite is an experimental feature')
}

function load(): typeof NodeSqlite {
  const emitWarning = process.emitWarning
  process.emitWarning = function filtered(this: unknown, warning: string | Error, ...rest: unknown[]) {
    if (isSqliteExperimentalWarning(warning, rest[0])) return
    return Reflect.apply(emitWarning, process, [warning, ...rest]) as void
  } as typeof process.emitWarning
  try {
    // a synchronous require so the filter is in place exactly while the module loads (a static
    // import would be evaluated before any code of this file runs)
    return createRequire(import.meta.url)('node:sqlite') as typeof NodeSqlite
  } finally {
    process.emitWarning = emitWarning
  }
}

const sqlite = load()

/** `DatabaseSync` from `node:sqlite`. */
export const DatabaseSync: typeof NodeSqlite.DatabaseSync = sqlite.DatabaseSync

/** SQLite's primary result codes the callers tell apart (https://sqlite.org/rescode.html). */
const RESULT_CODES: Record<number, string> = {
  1: 'SQLITE_ERROR', 3: 'SQLITE_PERM', 5: 'SQLITE_BUSY', 6: 'SQLITE_LOCKED', 8: 'SQLITE_READONLY', 10: 'SQLITE_IOERR',
  11: 'SQLITE_CORRUPT', 13: 'SQLITE_FULL', 14: 'SQLITE_CANTOPEN', 23: 'SQLITE_AUTH', 26: 'SQLITE_NOTADB',
}

/**
 * An error from SQLite named by its result code (`SQLITE_NOTADB`, `SQLITE_BUSY`, …), as callers
 * (the CLI's messages) tell them apart; node:sqlite itself says `ERR_SQLITE_ERROR` with a numeric
 * `errcode`. The original error is the cause.
 */
export class SqliteError extends Error {
  override readonly name = 'SqliteError'
  constructor(readonly code: string, message: string, options?: ErrorOptions) {
    super(message, options)
  }
}

/** `err` as a {@link SqliteError} when SQLite raised it; anything else unchanged. */
export function sqliteError(err: unknown): unknown {
  const e = err as { code?: unknown; errcode?: unknown; message?: unknown } | undefined
  if (e?.code !== 'ERR_SQLITE_ERROR' || typeof e.errcode !== 'number') return err
  // extended result codes carry the primary code in their low byte
  return new SqliteError(RESULT_CODES[e.errcode & 0xff] ?? `SQLITE_${e.errcode & 0xff}`, String(e.message), { cause: err })
}
