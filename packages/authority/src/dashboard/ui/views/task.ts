/**
 * A task: who it is for (with the external identity when the grant carried one), the delegation
 * tree with each node's state and who put it there, and the task's audit records, paged.
 */
import type { AuditView, Page, TaskDetail, TreeNode } from '../../api_types.js'
import { get } from '../api.js'
import { revoke } from '../actions.js'
import { actor, actorChain, auditTimeline, link, pager, when } from '../components.js'
import { badge, h, type Child } from '../dom.js'
import { short } from '../format.js'
import { dataView, type View, type ViewContext } from '../view.js'
import { statusBadge, subjectCell } from './tasks.js'

const STATE_TEXT: Record<TreeNode['state'], string> = {
  issued: 'issued',
  verified: 'verified by a guard',
  refused: 'refused',
  not_presented: 'issued, not presented',
  pending_approval: 'pending approval',
  approved: 'approved',
  denied: 'denied',
  revoked: 'revoked',
  expired: 'expired',
}

function node(n: TreeNode, ctx: ViewContext, depth: number): HTMLElement {
  const by = n.stateBy ? [' by ', actor(n.stateBy)] : []
  // an offline hop is not in the Authority's store; revoking its parent revokes it
  const canRevoke = ctx.viewer.canAdmin && n.kind === 'mandate' && !n.offline && n.state !== 'revoked' && n.state !== 'expired'
  const details: Child[] = [
    n.tool ? [h('dt', { text: 'Tool' }), h('dd', null, h('code', { text: n.tool }))] : null,
    [h('dt', { text: 'Audience' }), h('dd', null, n.audiences.length ? n.audiences.map((a, i) => [i ? ', ' : '', h('code', { text: a })]) : '—')],
    [h('dt', { text: 'Actor chain' }), h('dd', null, actorChain(n.actorChain))],
    n.argumentsDigest ? [h('dt', { text: 'Arguments digest' }), h('dd', null, h('code', { text: short(n.argumentsDigest, 12) }))] : null,
    n.approval
      ? [
          h('dt', { text: 'Approval' }),
          h(
            'dd',
            null,
            link(`/approvals/${encodeURIComponent(n.approval.id)}`, n.approval.status),
            n.approval.decidedBy ? [' by ', actor(n.approval.decidedBy)] : null,
            n.approval.reason ? h('span', { class: 'decision-reason', text: ` — “${n.approval.reason}”` }) : null,
          ),
        ]
      : null,
    n.code ? [h('dt', { text: 'Code' }), h('dd', null, h('code', { text: n.code }))] : null,
    [h('dt', { text: 'Issued' }), h('dd', null, when(n.issuedAt))],
    [h('dt', { text: 'Expires' }), h('dd', null, when(n.expiresAt))],
    [h('dt', { text: 'Id' }), h('dd', null, h('code', { title: n.id, text: short(n.id, 12) }))],
  ]
  return h(
    'li',
    { class: `node kind-${n.kind} state-${n.state}${n.offline ? ' offline' : ''}`, 'data-node': n.id, 'data-state': n.state, ...(n.offline ? { 'data-offline': n.offline.kind } : {}) },
    h(
      'div',
      { class: 'node-head' },
      h('span', { class: 'kind', text: n.offline ? `offline ${n.offline.kind === 'delegation' ? 'delegation' : n.offline.kind === 'audience' ? 'audience narrowing' : 'call'} hop (holder-signed; not minted by the Authority)` : n.kind === 'call' ? 'call' : n.credential === 'audience' ? 'audience credential' : depth === 0 ? 'root mandate' : 'delegated mandate' }),
      ' ',
      actor(n.holder),
      ' ',
      badge(STATE_TEXT[n.state], n.state),
      by.length ? h('span', { class: 'by' }, by) : null,
      canRevoke
        ? h('button', { type: 'button', class: 'danger small', 'data-action': 'revoke-mandate', onclick: () => void revoke({ kind: 'mandate', id: n.id, holder: n.holder }).then((ok) => ok && ctx.refresh()) }, 'Revoke mandate…')
        : null,
    ),
    h('dl', { class: 'facts compact' }, details),
    n.children.length ? h('ul', { class: 'tree' }, n.children.map((c) => node(c, ctx, depth + 1))) : null,
  )
}

export function taskView(ctx: ViewContext, txn: string): View {
  const view = dataView('Task', [h('p', null, link('/tasks', '« All tasks'))], async () => {
    const detail = await get<TaskDetail>(`/tasks/${encodeURIComponent(txn)}`)
    const cursor = ctx.params.get('cursor')
    const audit: Page<AuditView> = cursor ? await get<Page<AuditView>>('/audit', { task: txn, cursor }) : detail.audit
    const t = detail.task
    const title = document.getElementById('view-title')
    if (title) title.textContent = `Task: ${t.purpose ?? short(t.txn)}`
    return [
      h(
        'dl',
        { class: 'facts task-facts' },
        h('dt', { text: 'Task id' }),
        h('dd', null, h('code', { text: t.txn })),
        h('dt', { text: 'Status' }),
        h('dd', { 'data-task-status': t.status }, statusBadge(t.status)),
        h('dt', { text: 'Subject' }),
        h('dd', null, subjectCell(t)),
        t.subjectIdentity
          ? [h('dt', { text: 'External identity' }), h('dd', null, h('code', { text: t.subjectIdentity.sub }), ' at ', h('code', { text: t.subjectIdentity.issuer }), t.subjectIdentity.email ? ` (${t.subjectIdentity.email})` : '')]
          : null,
        h('dt', { text: 'Root agent' }),
        h('dd', null, actor(t.rootAgent)),
        h('dt', { text: 'Started' }),
        h('dd', null, when(t.createdAt)),
        h('dt', { text: 'Last activity' }),
        h('dd', null, when(t.lastActivityAt)),
        h('dt', { text: 'Calls' }),
        h('dd', { text: `${t.counts.calls}: ${t.counts.verified} verified, ${t.counts.refused} refused, ${t.counts.notPresented} issued but not presented, ${t.counts.pendingApprovals} pending approval` }),
      ),
      ctx.viewer.canAdmin && t.status === 'active'
        ? h('p', null, h('button', { type: 'button', class: 'danger', 'data-action': 'revoke-task', onclick: () => void revoke({ kind: 'txn', id: t.txn, ...(t.purpose ? { purpose: t.purpose } : {}) }).then((ok) => ok && ctx.refresh()) }, 'Revoke task…'))
        : null,
      h('h2', { text: 'Delegation tree' }),
      detail.tree.length ? h('ul', { class: 'tree root', 'aria-label': 'Delegation tree' }, detail.tree.map((n) => node(n, ctx, 0))) : h('p', { class: 'empty', text: 'No mandates.' }),
      h('h2', { text: 'Audit records of this task' }),
      auditTimeline(audit.items, 'Audit records of this task'),
      pager(audit, ctx.params, `/tasks/${encodeURIComponent(txn)}`),
    ]
  })
  return view
}
