/** Approvals: cards with the full actor chain; approve / deny with a reason; deep link per approval. */
import type { ApprovalView, Page } from '../../api_types.js'
import { get } from '../api.js'
import { decideApproval } from '../actions.js'
import { argumentsBlock } from '../arguments_view.js'
import { actor, actorChain, link, taskLink, when } from '../components.js'
import { badge, h } from '../dom.js'
import { apiQuery, filterForm, type Field } from '../filters.js'
import { dataView, type View, type ViewContext } from '../view.js'
import { pager } from '../components.js'

const FIELDS: Field[] = [
  { name: 'status', label: 'Status', kind: 'select', options: [['pending', 'pending'], ['approved', 'approved'], ['denied', 'denied'], ['expired', 'expired']] },
  { name: 'task', label: 'Task (txn)', kind: 'text' },
  { name: 'agent', label: 'Agent (did)', kind: 'text' },
  { name: 'tool', label: 'Tool', kind: 'text' },
  { name: 'since', label: 'Since', kind: 'time' },
  { name: 'until', label: 'Until', kind: 'time' },
  { name: 'q', label: 'Search', kind: 'text' },
]


/** One approval card; the decision buttons show only on pending approvals and to approvers/admins. */
export function approvalCard(a: ApprovalView, ctx: ViewContext, headingLevel: 'h2' | 'h3' = 'h2'): HTMLElement {
  const buttons =
    // nobody in the requesting chain may decide (the Authority refuses it too)
    a.status === 'pending' && ctx.viewer.canDecide && a.requestedBy.did !== ctx.viewer.me.did && !a.actorChain.some((x) => x.did === ctx.viewer.me.did)
      ? h(
          'div',
          { class: 'actions' },
          // revoked work can only be denied (the Authority refuses approving it)
          a.revoked ? null : h('button', { type: 'button', class: 'primary approve', 'data-action': 'approve', onclick: () => void decideApproval(a, 'approve').then((ok) => ok && ctx.refresh()) }, 'Approve…'),
          h('button', { type: 'button', class: 'danger deny', 'data-action': 'deny', onclick: () => void decideApproval(a, 'deny').then((ok) => ok && ctx.refresh()) }, 'Deny…'),
        )
      : null
  return h(
    'article',
    { class: `card approval status-${a.status}`, 'data-approval-card': a.id, 'aria-labelledby': `ap-${a.id}` },
    h(headingLevel, { id: `ap-${a.id}` }, h('code', { text: a.tool }), ' on ', h('code', { text: a.audience }), ' ', badge(a.status, a.status)),
    a.revoked ? h('p', { class: 'warning', role: 'note', text: 'The task, its mandate or an agent of its chain has been revoked: this call can only be denied.' }) : null,
    h(
      'dl',
      { class: 'facts' },
      h('dt', { text: 'Actor chain' }),
      h('dd', null, actorChain(a.actorChain, a.subject)),
      h('dt', { text: 'Requested by' }),
      h('dd', null, actor(a.requestedBy)),
      h('dt', { text: 'Why approval' }),
      h('dd', { text: a.reason }),
      h('dt', { text: 'Arguments' }),
      h('dd', null, argumentsBlock(a)),
      h('dt', { text: 'Task' }),
      h('dd', null, taskLink(a.txn)),
      h('dt', { text: 'Requested' }),
      h('dd', null, when(a.createdAt)),
      h('dt', { text: a.status === 'pending' ? 'Expires' : 'Expiry' }),
      h('dd', null, when(a.expiresAt)),
      a.decidedBy ? [h('dt', { text: 'Decided by' }), h('dd', null, actor(a.decidedBy))] : null,
      a.decisionReason ? [h('dt', { text: 'Decision reason' }), h('dd', { class: 'decision-reason', text: a.decisionReason })] : null,
    ),
    h('p', { class: 'permalink' }, link(`/approvals/${encodeURIComponent(a.id)}`, 'Link to this approval'), ' ', h('code', { class: 'muted', text: a.id })),
    buttons,
  )
}

export function approvalsView(ctx: ViewContext): View {
  // pending first: that is what an approver opens this page for
  const params = new URLSearchParams(ctx.params)
  if (!ctx.params.has('status') && !ctx.params.has('cursor') && [...ctx.params.keys()].length === 0) params.set('status', 'pending')
  return dataView('Approvals', [filterForm(FIELDS, params, '/approvals', ctx.navigate)], async () => {
    const page = await get<Page<ApprovalView>>('/approvals', apiQuery(FIELDS, params))
    if (page.items.length === 0) return h('p', { class: 'empty', text: params.get('status') === 'pending' ? 'No pending approvals.' : 'No approvals match.' })
    return [h('div', { class: 'cards' }, page.items.map((a) => approvalCard(a, ctx))), pager(page, ctx.params, '/approvals')]
  })
}

export function approvalView(ctx: ViewContext, id: string): View {
  return dataView('Approval', [h('p', null, link('/approvals', '« All approvals'))], async () => approvalCard(await get<ApprovalView>(`/approvals/${encodeURIComponent(id)}`), ctx))
}
