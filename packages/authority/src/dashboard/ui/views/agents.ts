/** Agents: registered principals with status; disable / enable / revoke for admins. */
import type { AgentView, Page } from '../../api_types.js'
import { get } from '../api.js'
import { revoke, setAgentEnabled } from '../actions.js'
import { link, pager, when } from '../components.js'
import { badge, h, table } from '../dom.js'
import { apiQuery, filterForm, type Field } from '../filters.js'
import { dataView, type View, type ViewContext } from '../view.js'

const FIELDS: Field[] = [
  { name: 'role', label: 'Role', kind: 'select', options: [['agent', 'agent'], ['admin', 'admin'], ['approver', 'approver'], ['grantor', 'grantor'], ['resource', 'resource']] },
  { name: 'status', label: 'Status', kind: 'select', options: [['enabled', 'enabled'], ['disabled', 'disabled'], ['revoked', 'revoked']] },
  { name: 'q', label: 'Search', kind: 'text', placeholder: 'name, did, owner' },
]

/** Issuer, subject and rule of a bound agent, with the matched claims worth showing (repository, namespace...). */
function bindingCell(a: AgentView): Node | string {
  const b = a.binding
  if (!b) return '—'
  const claims = Object.entries(b.claims ?? {}).map(([k, v]) => `${k}=${v}`).join(' ')
  return h(
    'span',
    { 'data-binding': b.rule },
    h('code', { text: b.sub }), ' at ', h('span', { text: b.iss }),
    h('span', { class: 'muted', text: ` — rule ${b.rule}${claims ? `; ${claims}` : ''}` }),
  )
}

export function agentsView(ctx: ViewContext): View {
  return dataView('Agents', [filterForm(FIELDS, ctx.params, '/agents', ctx.navigate)], async () => {
    const page = await get<Page<AgentView>>('/agents', apiQuery(FIELDS, ctx.params))
    if (page.items.length === 0) return h('p', { class: 'empty', text: 'No agents match.' })
    // workload agents (federation): what the key is bound to and when its registration ends, shown
    // only when the page holds one (most registries have none)
    const federated = page.items.some((a) => a.binding !== undefined || a.expiresAt !== undefined)
    const cols = ['Name', 'Did', 'Role', 'Owner', 'Status', 'Registered', ...(federated ? ['Bound to', 'Expires'] : []), ...(ctx.viewer.canAdmin ? ['Actions'] : [])]
    return [
      table(
        'Agents',
        cols,
        page.items.map((a) => {
          const who = { did: a.did, name: a.name, role: a.role }
          const actions = ctx.viewer.canAdmin && a.status !== 'revoked' && a.did !== ctx.viewer.me.did
            ? h(
                'span',
                { class: 'row-actions' },
                a.status === 'enabled'
                  ? h('button', { type: 'button', class: 'secondary small', 'data-action': 'disable', onclick: () => void setAgentEnabled(who, false).then((ok) => ok && ctx.refresh()) }, 'Disable…')
                  : h('button', { type: 'button', class: 'secondary small', 'data-action': 'enable', onclick: () => void setAgentEnabled(who, true).then((ok) => ok && ctx.refresh()) }, 'Enable…'),
                h('button', { type: 'button', class: 'danger small', 'data-action': 'revoke-agent', onclick: () => void revoke({ kind: 'agent', agent: who }).then((ok) => ok && ctx.refresh()) }, 'Revoke…'),
              )
            : null
          return [
            h('span', { 'data-agent': a.did }, h('strong', { text: a.name }), ' ', link(`/calls?agent=${encodeURIComponent(a.did)}`, 'calls')),
            h('code', { class: 'did-full', text: a.did }),
            a.role,
            a.owner ?? '—',
            h('span', null, badge(a.status, a.status), a.since ? [' since ', when(a.since)] : null, a.reason ? h('span', { class: 'muted', text: ` — ${a.reason}` }) : null),
            when(a.createdAt),
            ...(federated ? [bindingCell(a), a.expiresAt ? h('span', { 'data-expires': a.expiresAt }, when(a.expiresAt), Date.parse(a.expiresAt) <= Date.now() ? h('span', { class: 'muted', text: ' (expired)' }) : null) : '—'] : []),
            ...(ctx.viewer.canAdmin ? [actions ?? '—'] : []),
          ]
        }),
      ),
      pager(page, ctx.params, '/agents'),
    ]
  })
}
