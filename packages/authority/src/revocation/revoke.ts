/**
 * Revocation by mandate (cascading to every descendant through the stored parent links), by task, or
 * by agent; the incremental revocation-status document; and a RevocationSource for in-process guards.
 */
import { MandateError, type JsonValue, type RevocationSource, type RevocationStatusDocument } from '@mandate/core'
import type { AuthorityContext } from '../context.js'
import type { RevocationEntry } from '../types.js'

export type RevocationTarget = { mandate: string } | { txn: string } | { agent: string }

export interface RevokeMeta {
  by?: string
  reason?: string
}

const ID = /^[\x21-\x7e]{1,256}$/

export async function revokeTarget(ctx: AuthorityContext, target: RevocationTarget, meta: RevokeMeta = {}): Promise<RevocationEntry[]> {
  if (meta.reason !== undefined && (typeof meta.reason !== 'string' || meta.reason.length > 512)) throw new MandateError('INVALID_REQUEST', 'reason must be at most 512 characters')
  const keys = Object.keys(target ?? {})
  if (keys.length !== 1) throw new MandateError('INVALID_REQUEST', 'revoke exactly one of mandate, txn or agent')
  const fields: Record<string, JsonValue> = {}
  let entries: Array<{ kind: 'mandate' | 'task' | 'agent'; id: string }>
  if ('mandate' in target) {
    if (typeof target.mandate !== 'string' || !ID.test(target.mandate)) throw new MandateError('INVALID_REQUEST', 'mandate must be a mandate id (jti)')
    const record = await ctx.store.getMandate(target.mandate)
    if (!record) throw new MandateError('NOT_FOUND', 'no such mandate')
    const descendants = await ctx.store.descendants(target.mandate)
    entries = [target.mandate, ...descendants].map((id) => ({ kind: 'mandate' as const, id }))
    Object.assign(fields, { target: 'mandate', jti: target.mandate, txn: record.txn, subject: record.subject, holder: record.holder, descendants: descendants.length })
  } else if ('txn' in target) {
    if (typeof target.txn !== 'string' || !ID.test(target.txn)) throw new MandateError('INVALID_REQUEST', 'txn must be a task id')
    entries = [{ kind: 'task', id: target.txn }]
    Object.assign(fields, { target: 'task', txn: target.txn })
  } else if ('agent' in target) {
    if (typeof target.agent !== 'string' || !ID.test(target.agent)) throw new MandateError('INVALID_REQUEST', 'agent must be a did')
    entries = [{ kind: 'agent', id: target.agent }]
    Object.assign(fields, { target: 'agent', agent: target.agent })
  } else {
    throw new MandateError('INVALID_REQUEST', 'revoke exactly one of mandate, txn or agent')
  }
  if (meta.by !== undefined) fields.by = meta.by
  if (meta.reason !== undefined) fields.reason = meta.reason
  const at = ctx.now()
  const { added, audit } = await ctx.store.revoke(entries, { at, ...(meta.by !== undefined ? { by: meta.by } : {}), ...(meta.reason !== undefined ? { reason: meta.reason } : {}) }, ctx.audit.draft('revocation', fields))
  await ctx.audit.recorded(audit)
  return added
}

const PAGE = 5000

/** The revocation-status document (core's RevocationStatusDocument), entries after `since`. */
export async function revocationStatus(ctx: AuthorityContext, since?: string): Promise<RevocationStatusDocument> {
  let after = 0
  if (since !== undefined) {
    if (!/^(0|[1-9][0-9]{0,15})$/.test(since)) throw new MandateError('INVALID_REQUEST', 'since must be a cursor returned by this endpoint')
    after = Number(since)
    if (after > (await ctx.store.revocationHead())) throw new MandateError('INVALID_REQUEST', 'since is ahead of this Authority')
  }
  const entries = await ctx.store.revocationsSince(after, PAGE)
  const doc: RevocationStatusDocument = {
    issuer: ctx.issuer,
    cursor: String(entries.length ? (entries[entries.length - 1] as RevocationEntry).seq : after),
    mandates: [], tasks: [], agents: [],
    refresh_interval: ctx.limits.revocationRefresh,
  }
  for (const e of entries) (e.kind === 'mandate' ? doc.mandates : e.kind === 'task' ? doc.tasks : doc.agents).push(e.id)
  return doc
}

/** A RevocationSource reading the store directly (in-process guards learn of revocations at once). */
export function storeRevocationSource(ctx: AuthorityContext): RevocationSource {
  return { isRevoked: (q) => ctx.store.isRevoked(q) }
}
