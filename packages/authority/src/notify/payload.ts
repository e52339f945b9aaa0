/**
 * Notification bodies: the standard `{ type, timestamp, data }` shape and a Slack incoming-webhook
 * shape (`{ text, blocks }`). Built from the audit record (which never holds a token) and the
 * stored approval, agent and mandate records — never from a credential, proof, mandate token or
 * secret. Free text (reasons, purposes) is scrubbed of anything shaped like a JWS, in case a caller
 * pasted one there. Arguments only for endpoints configured with `includeArguments`.
 */
import type { JsonValue } from '@mandate/core'
import type { AuthorityStore } from '../store/store.js'
import type { AuditRecord } from '../types.js'
import type { NotificationEventType } from './events.js'

/** A principal as notifications show it: its did and registered name. */
export interface NotificationActor {
  did: string
  name?: string
}

/** The approval as a notification carries it. Times are ISO 8601 (UTC). */
export interface NotificationApproval {
  id: string
  /** Status as of this event. */
  status: 'pending' | 'approved' | 'denied' | 'expired'
  tool: string
  audience: string
  arguments_digest: string
  /** Only for endpoints with `includeArguments` (and when the Authority stores arguments). */
  arguments?: JsonValue
  /** Set instead of `arguments` when they exceed 16 KiB. */
  arguments_omitted?: 'too_large'
  /** Why an approval is needed (the policy rule's reason). */
  reason: string
  created_at: string
  expires_at: string
  /** Deep link to the approval in the dashboard. */
  link?: string
}

export interface NotificationTask {
  txn: string
  subject?: string
  purpose?: string
}

/** The body of a `standard` notification. */
export interface NotificationPayload {
  type: NotificationEventType
  /** When the event happened (the audit record's time). */
  timestamp: string
  data: {
    /** Sequence number of the audit record this notifies of. */
    audit_seq: number
    approval?: NotificationApproval
    task?: NotificationTask
    /** The agent that asked for the approval (the current actor). */
    requested_by?: NotificationActor
    /** Every actor of the requesting delegation chain, first delegate first, requester last. */
    actor_chain?: NotificationActor[]
    decision?: { outcome: 'approved' | 'denied' | 'expired'; by?: NotificationActor; reason?: string; at: string }
    revocation?: { target: 'mandate' | 'task' | 'agent'; id: string; at: string; reason?: string; by?: NotificationActor; descendants?: number; preemptive?: boolean; cascade?: string; granted_by?: NotificationActor }
    /** Holder of a revoked mandate. */
    holder?: NotificationActor
    /** The revoked agent. */
    agent?: NotificationActor
  }
}

const JWS_SHAPE = /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g
const MAX_ARGUMENTS = 16 * 1024

/** Free text with anything shaped like a compact JWS replaced. */
function scrub(s: string): string {
  return s.replace(JWS_SHAPE, '[redacted]')
}
function scrubAll<T>(v: T): T {
  if (typeof v === 'string') return scrub(v) as T
  if (Array.isArray(v)) return v.map(scrubAll) as T
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, scrubAll(x)])) as T
  return v
}

const iso = (ms: number): string => new Date(ms).toISOString()
const str = (v: JsonValue | undefined): string | undefined => (typeof v === 'string' ? v : undefined)

/** Looks up registered names (cached per payload). */
async function actors(store: AuthorityStore, dids: readonly string[]): Promise<Map<string, NotificationActor>> {
  const out = new Map<string, NotificationActor>()
  for (const did of new Set(dids)) {
    const a = await store.getAgent(did).catch(() => undefined)
    out.set(did, a ? { did, name: a.name } : { did })
  }
  return out
}

export interface PayloadOptions {
  includeArguments: boolean
  dashboardUrl: string | undefined
}

/** The standard payload of an outbox row's audit record. */
export async function buildPayload(store: AuthorityStore, event: NotificationEventType, rec: AuditRecord, o: PayloadOptions): Promise<NotificationPayload> {
  const f = rec.fields
  const data: NotificationPayload['data'] = { audit_seq: rec.seq }
  let args: Pick<NotificationApproval, 'arguments' | 'arguments_omitted'> = {}
  if (event.startsWith('approval.')) {
    const id = str(f.approval) ?? ''
    const a = await store.getApproval(id)
    const requester = a?.requestedBy ?? str(f.agent) ?? ''
    const chain = a?.actorChain ?? [requester]
    const approver = str(f.approver)
    const names = await actors(store, [requester, ...chain, ...(approver ? [approver] : [])])
    const status = event === 'approval.requested' ? 'pending' : (event.slice('approval.'.length) as 'approved' | 'denied' | 'expired')
    data.approval = {
      id, status, tool: a?.tool ?? str(f.tool) ?? '', audience: a?.audience ?? str(f.audience) ?? '', arguments_digest: a?.argumentsDigest ?? str(f.args) ?? '',
      reason: a?.reason ?? str(f.reason) ?? '',
      created_at: iso(a?.createdAt ?? rec.time), expires_at: iso(a?.expiresAt ?? rec.time),
      ...(o.dashboardUrl !== undefined ? { link: `${o.dashboardUrl}/approvals/${encodeURIComponent(id)}` } : {}),
    }
    if (o.includeArguments && a?.arguments !== undefined) {
      args = JSON.stringify(a.arguments).length <= MAX_ARGUMENTS ? { arguments: a.arguments } : { arguments_omitted: 'too_large' }
    }
    const parent = a ? await store.getMandate(a.parent).catch(() => undefined) : undefined
    const purpose = parent?.claims.purpose
    data.task = { txn: a?.txn ?? str(f.txn) ?? '', subject: a?.subject ?? str(f.subject) ?? '', ...(purpose !== undefined ? { purpose } : {}) }
    data.requested_by = names.get(requester) as NotificationActor
    data.actor_chain = chain.map((d) => names.get(d) as NotificationActor)
    if (status !== 'pending') {
      const why = event === 'approval.expired' ? undefined : str(f.reason)
      data.decision = { outcome: status, at: iso(rec.time), ...(approver ? { by: names.get(approver) as NotificationActor } : {}), ...(why !== undefined ? { reason: why } : {}) }
    }
  } else {
    const target = event.slice('revocation.'.length) as 'mandate' | 'task' | 'agent'
    const id = (target === 'mandate' ? str(f.jti) : target === 'task' ? str(f.txn) : str(f.agent)) ?? ''
    const by = str(f.by)
    const holder = str(f.holder)
    // a task revoked with the agent that granted it (the grantor cascade) says so
    const grantedBy = str(f.granted_by)
    const names = await actors(store, [...(by?.startsWith('did:') ? [by] : []), ...(holder ? [holder] : []), ...(target === 'agent' ? [id] : []), ...(grantedBy ? [grantedBy] : [])])
    data.revocation = {
      target, id, at: iso(rec.time),
      ...(str(f.reason) !== undefined ? { reason: str(f.reason) as string } : {}),
      ...(by !== undefined ? { by: names.get(by) ?? { did: by } } : {}),
      ...(typeof f.descendants === 'number' ? { descendants: f.descendants } : {}),
      ...(f.preemptive === true ? { preemptive: true } : {}),
      ...(str(f.cascade) !== undefined ? { cascade: str(f.cascade) as string } : {}),
      ...(grantedBy !== undefined ? { granted_by: names.get(grantedBy) ?? { did: grantedBy } } : {}),
    }
    const txn = str(f.txn)
    if (txn !== undefined) {
      const root = target === 'task' && store.taskMandates ? (await store.taskMandates(txn, 1).catch(() => []))[0] : undefined
      const subject = str(f.subject) ?? root?.subject
      const purpose = root?.claims.purpose
      data.task = { txn, ...(subject !== undefined ? { subject } : {}), ...(purpose !== undefined ? { purpose } : {}) }
    }
    if (holder !== undefined) data.holder = names.get(holder) as NotificationActor
    if (target === 'agent') data.agent = names.get(id) as NotificationActor
  }
  const payload = scrubAll<NotificationPayload>({ type: event, timestamp: iso(rec.time), data })
  // the arguments are the caller's data, shared as configured: not rewritten
  if (payload.data.approval) Object.assign(payload.data.approval, args)
  return payload
}

// ---- Slack

/** Slack mrkdwn escaping (https://api.slack.com/reference/surfaces/formatting#escaping). */
function esc(s: string, max = 300): string {
  const t = s.length > max ? `${s.slice(0, max - 1)}…` : s
  return t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}
const who = (a: NotificationActor | undefined): string => (a ? (a.name ? `${esc(a.name, 80)} (\`${esc(a.did, 120)}\`)` : `\`${esc(a.did, 120)}\``) : 'unknown')

const TITLES: Record<NotificationEventType, string> = {
  'approval.requested': 'Approval requested',
  'approval.approved': 'Approval granted',
  'approval.denied': 'Approval denied',
  'approval.expired': 'Approval expired',
  'revocation.mandate': 'Mandate revoked',
  'revocation.task': 'Task revoked',
  'revocation.agent': 'Agent revoked',
}

/** A body a Slack incoming webhook accepts: `text` (the notification fallback) and Block Kit `blocks`. */
export function slackBody(p: NotificationPayload): { text: string; blocks: JsonValue[] } {
  const d = p.data
  const title = TITLES[p.type]
  const lines: string[] = [`*${title}*`]
  const fields: string[] = []
  let text: string
  if (d.approval) {
    const a = d.approval
    text = `${title}: ${a.tool} for ${d.task?.subject ?? '?'} by ${d.requested_by?.name ?? d.requested_by?.did ?? '?'}`
    lines.push(`${who(d.requested_by)} asks to call \`${esc(a.tool, 128)}\` on ${esc(a.audience, 200)}`)
    if (a.reason) lines.push(`> ${esc(a.reason, 500)}`)
    fields.push(`*Subject*\n${esc(d.task?.subject ?? '?', 200)}`, `*Task*\n\`${esc(d.task?.txn ?? '?', 128)}\``)
    if (d.task?.purpose) fields.push(`*Purpose*\n${esc(d.task.purpose, 300)}`)
    fields.push(`*Expires*\n${a.expires_at}`)
    if (d.decision) fields.push(`*Decision*\n${d.decision.outcome}${d.decision.by ? ` by ${who(d.decision.by)}` : ''}${d.decision.reason ? `: ${esc(d.decision.reason, 300)}` : ''}`)
  } else {
    const r = d.revocation
    text = `${title}: ${r?.id ?? '?'}${r?.reason ? ` (${r.reason})` : ''}`
    lines.push(`\`${esc(r?.id ?? '?', 200)}\`${r?.reason ? `: ${esc(r.reason, 500)}` : ''}`)
    if (d.task) fields.push(`*Task*\n\`${esc(d.task.txn, 128)}\``)
    if (d.task?.subject) fields.push(`*Subject*\n${esc(d.task.subject, 200)}`)
    if (d.agent) fields.push(`*Agent*\n${who(d.agent)}`)
    if (d.holder) fields.push(`*Holder*\n${who(d.holder)}`)
    if (r?.by) fields.push(`*By*\n${who(r.by)}`)
  }
  const blocks: JsonValue[] = [
    { type: 'section', text: { type: 'mrkdwn', text: lines.join('\n').slice(0, 2900) } },
  ]
  // a section's fields must not be empty (Slack refuses the message)
  if (fields.length) blocks.push({ type: 'section', fields: fields.slice(0, 10).map((t) => ({ type: 'mrkdwn', text: t.slice(0, 1900) })) })
  if (d.actor_chain && d.actor_chain.length) {
    blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: `Actor chain: ${d.actor_chain.map(who).join(' → ')}`.slice(0, 2900) }] })
  }
  if (d.approval?.arguments !== undefined) {
    const json = JSON.stringify(d.approval.arguments, null, 2).replace(/```/g, "'''")
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: `*Arguments*\n\`\`\`${esc(json, 2500)}\`\`\`` } })
  }
  if (d.approval?.link) {
    blocks.push({ type: 'actions', elements: [{ type: 'button', text: { type: 'plain_text', text: p.type === 'approval.requested' ? 'Review in dashboard' : 'Open in dashboard' }, url: d.approval.link }] })
  }
  // the fallback text is mrkdwn too: escaped, so a name like `<!channel>` cannot mention anyone
  return { text: esc(text, 3000), blocks }
}
