/** Audit: every filter the API has, paged, as a timeline. */
import type { AuditView, Page } from '../../api_types.js'
import { get } from '../api.js'
import { auditTimeline, pager } from '../components.js'
import { h } from '../dom.js'
import { apiQuery, filterForm, type Field } from '../filters.js'
import { dataView, type View, type ViewContext } from '../view.js'

const FIELDS: Field[] = [
  { name: 'task', label: 'Task (txn)', kind: 'text' },
  { name: 'agent', label: 'Agent (did)', kind: 'text' },
  { name: 'subject', label: 'Subject', kind: 'text' },
  { name: 'tool', label: 'Tool', kind: 'text' },
  { name: 'type', label: 'Event type', kind: 'text', placeholder: 'approval.approved' },
  { name: 'decision', label: 'Decision', kind: 'text', placeholder: 'allowed, refused…' },
  { name: 'since', label: 'Since', kind: 'time' },
  { name: 'until', label: 'Until', kind: 'time' },
  { name: 'q', label: 'Search', kind: 'text' },
]

export function auditView(ctx: ViewContext): View {
  return dataView('Audit log', [filterForm(FIELDS, ctx.params, '/audit', ctx.navigate)], async () => {
    const page = await get<Page<AuditView>>('/audit', apiQuery(FIELDS, ctx.params))
    return h('div', { id: 'audit' }, auditTimeline(page.items, 'Audit records'), pager(page, ctx.params, '/audit'))
  })
}
