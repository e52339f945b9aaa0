import { cryptoBackend } from '@mandate/core'
import { canonicalJson } from '../internal/canonical_json.js'
import type { AuditDraft, AuditRecord } from '../types.js'

/** The canonical JSON text {@link auditHash} hashes. */
export function auditHashInput(record: Omit<AuditRecord, 'hash'>): string {
  const { seq, time, type, fields, prev } = record
  if (fields !== undefined && fields !== null && prev !== undefined && seq !== undefined && time !== undefined && type !== undefined) {
    // RFC 8785 member order of the five names is fields, prev, seq, time, type: writing the outer
    // object directly gives the same text as canonicalJson of it, without building and sorting it
    return `{"fields":${canonicalJson(fields)},"prev":${canonicalJson(prev)},"seq":${canonicalJson(seq)},"time":${canonicalJson(time)},"type":${canonicalJson(type)}}`
  }
  return canonicalJson({ seq, time, type, fields, prev } as never)
}

/** SHA-256 (base64url) over the canonical JSON of {seq, time, type, fields, prev}. */
export function auditHash(record: Omit<AuditRecord, 'hash'>): string {
  const text = auditHashInput(record)
  // hashes the string's UTF-8 in one native call: the same bytes as TextEncoder (both write U+FFFD
  // for a lone surrogate) without the copy to a Uint8Array and the JS base64url pass; every append
  // pays this (test/audit_hash_equivalence.test.ts)
  return cryptoBackend.sha256Base64url(text)
}

/** Link a draft to the chain head: the next seq, the previous hash, its own hash. */
export function chainRecord(head: { seq: number; hash: string } | undefined, draft: AuditDraft): AuditRecord {
  const base = { seq: (head?.seq ?? 0) + 1, time: draft.time, type: draft.type, fields: draft.fields, prev: head?.hash ?? '' }
  return { ...base, hash: auditHash(base) }
}

/** The indexed columns of a record (task, agent, subject), read from its fields. */
export function auditIndex(fields: AuditDraft['fields']): { txn: string | null; agent: string | null; subject: string | null } {
  const s = (v: unknown) => (typeof v === 'string' ? v : null)
  return { txn: s(fields.txn), agent: s(fields.agent), subject: s(fields.subject) }
}
