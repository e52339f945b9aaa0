/**
 * Look at an Authority SQLite file without changing it: `mandate doctor --db` used to open it as a
 * store, which creates the schema, so checking any SQLite file (or a mistyped path's neighbour) made
 * it an Authority database and reported OK. Opened read-only; no table is created and nothing is
 * migrated. Reading a WAL database can leave SQLite's `-wal` / `-shm` files next to it; they are
 * never removed here, since an Authority starting meanwhile could be writing to them.
 */
import { DatabaseSync, sqliteError } from './sqlite_driver.js'

/** What a read-only look at an SQLite file found. */
export interface SqliteInspection {
  /** `PRAGMA quick_check`'s answer (`ok` when consistent). */
  quickCheck: string
  /** Whether the file holds the Authority's tables (meta, agents, mandates, audit, audit_head). */
  isAuthority: boolean
  /** Records in the audit log (its highest seq), 0 when empty or not an Authority database. */
  auditRecords: number
}

const AUTHORITY_TABLES = ['meta', 'agents', 'mandates', 'audit', 'audit_head']

/**
 * Open `path` read-only and report its consistency and whether it is an Authority database. Throws
 * SqliteError (`SQLITE_NOTADB`, `SQLITE_CANTOPEN`, …) when SQLite cannot read it at all.
 */
export function inspectSqliteDatabase(path: string): SqliteInspection {
  let db
  try {
    db = new DatabaseSync(path, { readOnly: true })
  } catch (err) {
    throw sqliteError(err)
  }
  try {
    const quickCheck = String((db.prepare('PRAGMA quick_check').get() as { quick_check?: unknown } | undefined)?.quick_check)
    const names = new Set((db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>).map((r) => r.name))
    const isAuthority = AUTHORITY_TABLES.every((t) => names.has(t))
    const auditRecords = isAuthority ? Number((db.prepare('SELECT max(seq) AS seq FROM audit').get() as { seq: number | null } | undefined)?.seq ?? 0) : 0
    return { quickCheck, isAuthority, auditRecords }
  } catch (err) {
    throw sqliteError(err)
  } finally {
    db.close()
  }
}

