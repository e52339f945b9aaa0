/**
 * Revocation by mandate (cascading to every descendant through the stored parent links), by task, or
 * by agent (cascading to every task that agent granted); the incremental revocation-status document;
 * and a RevocationSource for in-process guards.
 */
import { cryptoBackend, isDidKey, MandateError, type JsonValue, type RevocationSource, type RevocationStatusDocument } from '@mandate/core'
import { checkReasonText } from '../audit/reason_text.js'
import type { AuthorityContext } from '../context.js'
import { keepingAnAdmin } from '../exchange/principals.js'
import { grantedTaskDraft, type AdminGuard } from '../store/store.js'
import type { RevocationEntry } from '../types.js'

export type RevocationTarget = { mandate: string } | { txn: string } | { agent: string }

export interface RevokeMeta {
  by?: string
  reason?: string
  /**
   * Revoke even though the Authority knows no such mandate, task or agent (yet): a pre-emptive
   * revocation. Without it, an unknown target is NOT_FOUND (a typo must not look like success).
   */
  preemptive?: boolean
}

/** What a revocation did. */
export interface RevocationResult {
  /**
   * Entries added now (empty when everything was already revoked). Revoking an agent also lists the
   * tasks it granted (`kind: 'task'`), revoked with it.
   */
  revoked: RevocationEntry[]
  /** True when the target was unknown and revoked pre-emptively (`preemptive: true` was asked for). */
  preemptive: boolean
}

const ID = /^[\x21-\x7e]{1,256}$/

export async function revokeTarget(ctx: AuthorityContext, target: RevocationTarget, meta: RevokeMeta = {}): Promise<RevocationResult> {
  if (typeof meta !== 'object' || meta === null) throw new MandateError('INVALID_REQUEST', 'revocation meta must be an object')
  checkReasonText(meta.reason)
  if (meta.by !== undefined && (typeof meta.by !== 'string' || meta.by.length > 512)) throw new MandateError('INVALID_REQUEST', 'by must be a string of at most 512 characters')
  if (meta.preemptive !== undefined && typeof meta.preemptive !== 'boolean') throw new MandateError('INVALID_REQUEST', 'preemptive must be a boolean')
  if (typeof target !== 'object' || target === null || Array.isArray(target)) throw new MandateError('INVALID_REQUEST', 'revoke exactly one of mandate, txn or agent')
  const keys = Object.keys(target)
  if (keys.length !== 1) throw new MandateError('INVALID_REQUEST', 'revoke exactly one of mandate, txn or agent')
  const fields: Record<string, JsonValue> = {}
  let entries: Array<{ kind: 'mandate' | 'task' | 'agent'; id: string }>
  let known: boolean
  // a registered agent to revoke: never the last admin (principals.ts)
  let principal: string | undefined
  if ('mandate' in target) {
    if (typeof target.mandate !== 'string' || !ID.test(target.mandate)) throw new MandateError('INVALID_REQUEST', 'mandate must be a mandate id (jti)')
    const record = await ctx.store.getMandate(target.mandate)
    known = record !== undefined
    const descendants = record ? await ctx.store.descendants(target.mandate) : []
    entries = [target.mandate, ...descendants].map((id) => ({ kind: 'mandate' as const, id }))
    Object.assign(fields, { target: 'mandate', jti: target.mandate, descendants: descendants.length })
    if (record) Object.assign(fields, { txn: record.txn, subject: record.subject, holder: record.holder })
  } else if ('txn' in target) {
    if (typeof target.txn !== 'string' || !ID.test(target.txn)) throw new MandateError('INVALID_REQUEST', 'txn must be a task id')
    known = await ctx.store.hasTask(target.txn)
    entries = [{ kind: 'task', id: target.txn }]
    Object.assign(fields, { target: 'task', txn: target.txn })
  } else if ('agent' in target) {
    if (typeof target.agent !== 'string' || !ID.test(target.agent)) throw new MandateError('INVALID_REQUEST', 'agent must be a did')
    known = (await ctx.store.getAgent(target.agent)) !== undefined
    // every agent is a did:key: an unknown id revoked ahead of time must at least be one (it goes into the revocation feed)
    if (!known && !isDidKey(target.agent)) throw new MandateError('INVALID_REQUEST', 'agent must be a did:key')
    if (known) principal = target.agent
    entries = [{ kind: 'agent', id: target.agent }]
    Object.assign(fields, { target: 'agent', agent: target.agent })
  } else {
    throw new MandateError('INVALID_REQUEST', 'revoke exactly one of mandate, txn or agent')
  }
  const preemptive = !known
  if (preemptive && meta.preemptive !== true) {
    const what = 'mandate' in target ? 'mandate' : 'txn' in target ? 'task' : 'agent'
    throw new MandateError('NOT_FOUND', `no such ${what}; to revoke it before it exists, ask for a pre-emptive revocation`, { detail: { target: what } })
  }
  if (preemptive) fields.preemptive = true
  if (meta.by !== undefined) fields.by = meta.by
  if (meta.reason !== undefined) fields.reason = meta.reason
  const at = ctx.now()
  // revoking a principal also revokes every task it granted (the store finds them inside the same
  // transaction): each gets its own audit record, naming the grantor it was revoked with
  const grantedTask = (txn: string, grantor: string) => grantedTaskDraft(txn, grantor, meta, ctx.now())
  const apply = (keepAdmin?: AdminGuard) => ctx.store.revoke(entries, { at, ...(meta.by !== undefined ? { by: meta.by } : {}), ...(meta.reason !== undefined ? { reason: meta.reason } : {}) }, ctx.audit.draft('revocation', fields), grantedTask, keepAdmin)
  const { added, audit, cascade } = await (principal === undefined ? apply() : keepingAnAdmin(ctx.store, principal, ctx.now, apply))
  await ctx.audit.recorded(audit)
  for (const rec of cascade) await ctx.audit.recorded(rec)
  return { revoked: added, preemptive }
}

const PAGE = 5000

/**
 * The cursor after entry `e`: its seq and a short digest of what it revoked. A store restored from
 * a backup reuses seqs for other revocations; a client's cursor from before the restore then names
 * an entry that is not there any more, is refused, and the client reads the whole list again
 * instead of skipping what the new entries revoke.
 */
function cursorAfter(e: RevocationEntry): string {
  return `${e.seq}.${cryptoBackend.sha256Base64url(`${e.kind}:${e.id}`).slice(0, 12)}`
}

/** The revocation-status document (core's RevocationStatusDocument), entries after `since`. */
export async function revocationStatus(ctx: AuthorityContext, since?: string): Promise<RevocationStatusDocument> {
  let after = 0
  let named = false
  if (since !== undefined) {
    const m = /^(0|[1-9][0-9]{0,15})(?:\.([A-Za-z0-9_-]{12}))?$/.exec(since)
    if (!m) throw new MandateError('INVALID_REQUEST', 'since must be a cursor returned by this endpoint')
    after = Number(m[1])
    named = m[2] !== undefined && after > 0
    // a cursor naming its entry is checked against that entry below (one read); a bare seq here
    if (!named && after > (await ctx.store.revocationHead())) throw new MandateError('INVALID_REQUEST', 'since is ahead of this Authority')
  }
  // one more than a page: whether more follow is known, not guessed; a named cursor's own entry first
  const read = await ctx.store.revocationsSince(named ? after - 1 : after, PAGE + 1 + (named ? 1 : 0))
  let tail: RevocationEntry | undefined
  if (named) {
    // the entry the cursor was given after must still be the one at that seq
    tail = read.shift()
    if (!tail || tail.seq !== after || cursorAfter(tail) !== since) throw new MandateError('INVALID_REQUEST', 'since names a revocation this Authority does not hold (restored from a backup?): read from the start')
  }
  const more = read.length > PAGE
  const entries = more ? read.slice(0, PAGE) : read
  const last = entries.length ? (entries[entries.length - 1] as RevocationEntry) : tail
  const doc: RevocationStatusDocument = {
    issuer: ctx.issuer,
    cursor: last ? cursorAfter(last) : String(after),
    mandates: [], tasks: [], agents: [],
    refresh_interval: ctx.limits.revocationRefresh,
    // a client is current only once it has read every page: it asks again at once with the cursor
    ...(more ? { more: true } : {}),
  }
  for (const e of entries) (e.kind === 'mandate' ? doc.mandates : e.kind === 'task' ? doc.tasks : doc.agents).push(e.id)
  return doc
}

/** A RevocationSource reading the store directly (in-process guards learn of revocations at once). */
export function storeRevocationSource(ctx: AuthorityContext): RevocationSource {
  return { isRevoked: (q) => ctx.store.isRevoked(q) }
}
