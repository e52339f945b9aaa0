/**
 * One stored audit row (columns seq, time, type, fields, prev, hash) as an AuditRecord, shared by
 * the SQL stores. A row whose `fields` do not parse is returned with a marker rather than thrown:
 * verification reports it (its hash cannot match), so one bad row never hides the rest of the log.
 */
import type { AuditRecord } from '../types.js'

export function auditRecordFromRow(r: Record<string, unknown>): AuditRecord {
  let fields: AuditRecord['fields']
  try {
    fields = JSON.parse(r.fields as string) as AuditRecord['fields']
  } catch {
    fields = { unreadable: String(r.fields).slice(0, 64) }
  }
  // Number(): SQLite answers numbers, Postgres answers bigint columns as strings
  return { seq: Number(r.seq), time: Number(r.time), type: r.type as AuditRecord['type'], fields, prev: r.prev as string, hash: r.hash as string }
}
