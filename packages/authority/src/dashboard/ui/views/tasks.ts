/** Tasks: filter by subject, agent, status, time range, search; paged. */
import type { Page, TaskStatus, TaskSummary } from '../../api_types.js'
import { get } from '../api.js'
import { actor, link, pager, when } from '../components.js'
import { badge, h, table } from '../dom.js'
import { short } from '../format.js'
import { apiQuery, filterForm, type Field } from '../filters.js'
import { dataView, type View, type ViewContext } from '../view.js'

const FIELDS: Field[] = [
  { name: 'subject', label: 'Subject', kind: 'text', placeholder: 'alice@example.com' },
  { name: 'agent', label: 'Agent (did)', kind: 'text' },
  { name: 'status', label: 'Status', kind: 'select', options: [['active', 'active'], ['revoked', 'revoked'], ['expired', 'expired']] },
  { name: 'since', label: 'Since', kind: 'time' },
  { name: 'until', label: 'Until', kind: 'time' },
  { name: 'q', label: 'Search', kind: 'text', placeholder: 'purpose, task id…' },
]

export function statusBadge(status: TaskStatus): HTMLElement {
  return badge(status, status)
}

export function subjectCell(t: TaskSummary): HTMLElement {
  const id = t.subjectIdentity
  return h(
    'span',
    { class: 'subject' },
    h('strong', { text: t.subject }),
    id ? h('span', { class: 'idp' }, ` ${[id.name, id.email].filter(Boolean).join(' · ') || id.sub} via `, h('code', { text: id.issuer })) : null,
  )
}

function counts(t: TaskSummary): HTMLElement {
  const c = t.counts
  return h(
    'span',
    { class: 'counts' },
    `${c.mandates} mandates · ${c.calls} calls: ${c.verified} verified, ${c.refused} refused, ${c.notPresented} not presented`,
    c.pendingApprovals ? h('strong', { class: 'pending', text: ` · ${c.pendingApprovals} awaiting approval` }) : null,
  )
}

export function tasksView(ctx: ViewContext): View {
  return dataView('Tasks', [filterForm(FIELDS, ctx.params, '/tasks', ctx.navigate)], async () => {
    const page = await get<Page<TaskSummary>>('/tasks', apiQuery(FIELDS, ctx.params))
    if (page.items.length === 0) return h('p', { class: 'empty', text: 'No tasks match.' })
    return [
      table(
        'Tasks',
        ['Task', 'Subject', 'Root agent', 'Status', 'Activity', 'Started', 'Last activity'],
        page.items.map((t) => [
          h('span', null, link(`/tasks/${encodeURIComponent(t.txn)}`, t.purpose ?? short(t.txn), { 'data-task': t.txn }), h('br'), h('code', { class: 'muted', title: t.txn, text: short(t.txn, 8) })),
          subjectCell(t),
          actor(t.rootAgent),
          statusBadge(t.status),
          counts(t),
          when(t.createdAt),
          when(t.lastActivityAt),
        ]),
      ),
      pager(page, ctx.params, '/tasks'),
    ]
  })
}
