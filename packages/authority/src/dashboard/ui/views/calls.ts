/**
 * Calls: each credential or attempt and what became of it. "Issued, not presented" (no guard ever
 * reported it) is drawn differently from "verified" (a guard checked it): the word, the icon and the
 * style all differ, so a credential nobody used never reads as a call that happened.
 */
import type { CallOutcome, CallView, Page } from '../../api_types.js'
import { get } from '../api.js'
import { actor, actorChain, pager, taskLink, when } from '../components.js'
import { h, table } from '../dom.js'
import { apiQuery, filterForm, type Field } from '../filters.js'
import { dataView, type View, type ViewContext } from '../view.js'

const FIELDS: Field[] = [
  { name: 'outcome', label: 'Outcome', kind: 'select', options: [['verified', 'verified'], ['refused', 'refused'], ['not_presented', 'issued, not presented'], ['pending_approval', 'pending approval']] },
  { name: 'task', label: 'Task (txn)', kind: 'text' },
  { name: 'agent', label: 'Agent (did)', kind: 'text' },
  { name: 'subject', label: 'Subject', kind: 'text' },
  { name: 'tool', label: 'Tool', kind: 'text' },
  { name: 'since', label: 'Since', kind: 'time' },
  { name: 'until', label: 'Until', kind: 'time' },
  { name: 'q', label: 'Search', kind: 'text' },
]

const OUTCOME: Record<CallOutcome, [icon: string, text: string]> = {
  verified: ['✓', 'verified by guard'],
  refused: ['✕', 'refused'],
  not_presented: ['○', 'issued, not presented'],
  pending_approval: ['…', 'pending approval'],
}

export function outcomeCell(c: CallView): HTMLElement {
  const [icon, text] = OUTCOME[c.outcome] ?? ['?', c.outcome]
  return h(
    'span',
    { class: `outcome outcome-${c.outcome}`, 'data-outcome': c.outcome },
    h('span', { class: 'icon', 'aria-hidden': 'true', text: icon }),
    ` ${text}`,
    c.outcomeBy ? [' by ', actor(c.outcomeBy)] : null,
    c.code ? h('code', { class: 'code', text: ` ${c.code}` }) : null,
  )
}

export function callsView(ctx: ViewContext): View {
  return dataView('Calls', [filterForm(FIELDS, ctx.params, '/calls', ctx.navigate)], async () => {
    const page = await get<Page<CallView>>('/calls', apiQuery(FIELDS, ctx.params))
    if (page.items.length === 0) return h('p', { class: 'empty', text: 'No calls match.' })
    return [
      table(
        'Calls',
        ['Tool', 'Outcome', 'Agent', 'Actor chain', 'Task', 'Issued', 'Reported'],
        page.items.map((c) => [h('span', null, h('code', { text: c.tool }), h('br'), h('code', { class: 'muted', text: c.audience })), outcomeCell(c), actor(c.agent), actorChain(c.actorChain), taskLink(c.txn), when(c.issuedAt), when(c.reportedAt)]),
        { rowAttrs: (i) => ({ 'data-call': page.items[i]!.id, class: `call-row outcome-${page.items[i]!.outcome}` }) },
      ),
      pager(page, ctx.params, '/calls'),
    ]
  })
}
