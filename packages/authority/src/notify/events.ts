/**
 * Which audit records become notifications, and the outbox rows they need: one per endpoint that
 * wants the event, ordered per approval (the decision of an approval never overtakes its request).
 */
import { randomId } from '@mandate/core'
import type { OutboxEntry, OutboxPlanner } from '../store/store.js'
import type { AuditRecord } from '../types.js'

/** Every notification event type. */
export const NOTIFICATION_EVENTS = [
  'approval.requested', 'approval.approved', 'approval.denied', 'approval.expired',
  'revocation.mandate', 'revocation.task', 'revocation.agent',
] as const

export type NotificationEventType = (typeof NOTIFICATION_EVENTS)[number]

/** The notification event of an audit record, or undefined when it is not one. */
export function notificationEvent(rec: AuditRecord): NotificationEventType | undefined {
  switch (rec.type) {
    case 'approval.requested':
    case 'approval.approved':
    case 'approval.denied':
    case 'approval.expired':
      return rec.type
    case 'revocation': {
      const t = rec.fields.target
      return t === 'mandate' || t === 'task' || t === 'agent' ? `revocation.${t}` : undefined
    }
    default:
      return undefined
  }
}

/** The planner the store runs inside each audit transaction. Total: it never throws. */
export function outboxPlanner(endpoints: ReadonlyArray<{ id: string; events: ReadonlySet<NotificationEventType> }>): OutboxPlanner {
  return (rec) => {
    const event = notificationEvent(rec)
    if (event === undefined) return []
    const approval = typeof rec.fields.approval === 'string' ? rec.fields.approval : undefined
    const out: OutboxEntry[] = []
    for (const e of endpoints) {
      if (!e.events.has(event)) continue
      out.push({ endpoint: e.id, event, messageId: `msg_${randomId()}`, ...(approval !== undefined ? { orderKey: `approval:${approval}` } : {}) })
    }
    return out
  }
}
