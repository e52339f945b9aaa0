/** Overview: counts, pending approvals, the most recent tasks. */
import type { ApprovalView, Overview, Page, TaskSummary } from '../../api_types.js'
import { get } from '../api.js'
import { link, when } from '../components.js'
import { h, table } from '../dom.js'
import { dataView, type View, type ViewContext } from '../view.js'
import { approvalCard } from './approvals.js'
import { statusBadge } from './tasks.js'

export function overviewView(ctx: ViewContext): View {
  return dataView('Overview', [], async () => {
    const [ov, pending, tasks] = await Promise.all([
      get<Overview>('/overview'),
      get<Page<ApprovalView>>('/approvals', { status: 'pending', limit: 10 }),
      get<Page<TaskSummary>>('/tasks', { limit: 10 }),
    ])
    const stat = (label: string, value: number, path: string) => h('li', { class: 'stat' }, link(path, String(value), { class: 'value', 'aria-describedby': `stat-${label.replace(/\W/g, '')}` }), h('span', { id: `stat-${label.replace(/\W/g, '')}`, text: label }))
    return [
      h(
        'ul',
        { class: 'stats', 'aria-label': 'Counts' },
        stat('tasks', ov.counts.tasks, '/tasks'),
        stat('agents', ov.counts.agents, '/agents'),
        stat('pending approvals', ov.counts.pendingApprovals, '/approvals?status=pending'),
        stat('calls in 24 h', ov.counts.calls24h, '/calls'),
        stat('refused in 24 h', ov.counts.refused24h, '/calls?outcome=refused'),
      ),
      h('p', { class: 'muted' }, 'Issuer ', h('code', { text: ov.issuer }), ov.audit.ok ? ' · audit log hash chain verified' : ' · AUDIT LOG VERIFICATION FAILED'),
      h('h2', { text: 'Pending approvals' }),
      pending.items.length ? h('div', { class: 'cards' }, pending.items.map((a) => approvalCard(a, ctx, 'h3'))) : h('p', { class: 'empty', text: 'No pending approvals.' }),
      h('h2', { text: 'Recent tasks' }),
      tasks.items.length
        ? table(
            'Recent tasks',
            ['Task', 'Subject', 'Status', 'Last activity'],
            tasks.items.map((t) => [link(`/tasks/${encodeURIComponent(t.txn)}`, t.purpose ?? t.txn), t.subject, statusBadge(t.status), when(t.lastActivityAt)]),
          )
        : h('p', { class: 'empty', text: 'No tasks yet.' }),
    ]
  })
}
