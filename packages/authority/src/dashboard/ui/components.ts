/** Pieces every view uses: actors with names and dids, times, links, the audit timeline, paging. */
import type { Actor, AuditView, Page } from '../api_types.js'
import { BASE } from './api.js'
import { h, type Child } from './dom.js'
import { absolute, clockOf, dayOf, duration, relative, short } from './format.js'

/** A principal: registered name (or "unregistered"), role, and the did (shortened, full in title). */
export function actor(a: Actor | undefined): HTMLElement {
  if (!a) return h('span', { class: 'muted', text: '—' })
  return h(
    'span',
    { class: 'actor', 'data-did': a.did },
    h('strong', { text: a.name ?? 'unregistered' }),
    a.role ? h('span', { class: 'role', text: ` (${a.role})` }) : null,
    ' ',
    h('code', { class: 'did', title: a.did, text: short(a.did) }),
  )
}

/** The full delegation chain, first delegate first, each with name and did. */
export function actorChain(chain: Actor[], subject?: string): HTMLElement {
  const items: Child[] = []
  if (subject) items.push(h('li', { class: 'subject' }, h('span', { class: 'muted', text: 'for ' }), h('strong', { text: subject })))
  for (const a of chain) items.push(h('li', null, actor(a)))
  if (items.length === 0) items.push(h('li', { class: 'muted', text: '—' }))
  return h('ol', { class: 'chain', 'aria-label': 'Actor chain, first delegate first' }, items)
}

/** `<time>`: absolute UTC date and time, with the age beside it (kept fresh by the ticker). */
export function when(iso: string | undefined): HTMLElement {
  if (!iso) return h('span', { class: 'muted', text: '—' })
  return h('span', { class: 'when' }, h('time', { datetime: iso, text: absolute(iso) }), ' ', h('span', { class: 'rel', 'data-rel': iso, text: relative(iso) }))
}

/** Re-renders every relative age on the page (called every few seconds). */
export function tickAges(): void {
  const now = Date.now()
  for (const el of Array.from(document.querySelectorAll<HTMLElement>('[data-rel]'))) el.textContent = relative(el.dataset.rel, now)
}

/** A client-side link inside the dashboard. */
export function link(path: string, text: string, attrs: Record<string, string> = {}): HTMLAnchorElement {
  return h('a', { href: `${BASE}${path}`, 'data-link': '', ...attrs, text })
}

export function taskLink(txn: string | undefined): Child {
  if (!txn) return h('span', { class: 'muted', text: '—' })
  return link(`/tasks/${encodeURIComponent(txn)}`, short(txn, 8), { title: txn })
}

/**
 * The audit records as a timeline table. A short run (< 1 h) shows milliseconds and the offset from
 * its first record ("+1.2 s"); a run spanning days is grouped under a heading per UTC day. Every row
 * keeps its absolute date and time and its age, so a page read weeks later still says when.
 */
export function auditTimeline(records: AuditView[], caption: string): HTMLElement {
  if (records.length === 0) return h('p', { class: 'empty', text: 'No audit records match.' })
  const sorted = [...records].sort((a, b) => a.seq - b.seq)
  const first = new Date(sorted[0]!.at).getTime()
  const last = new Date(sorted[sorted.length - 1]!.at).getTime()
  const span = last - first
  const short_ = span < 3_600_000
  const days = new Set(sorted.map((r) => dayOf(r.at)))
  const byDay = days.size > 1
  const columns = ['Time (UTC)', 'Event', 'Decision', 'Agent', 'Task', 'What happened']
  const groups = new Map<string, AuditView[]>()
  for (const r of sorted) {
    const d = dayOf(r.at)
    const g = groups.get(d)
    if (g) g.push(r)
    else groups.set(d, [r])
  }
  const bodies: HTMLElement[] = []
  for (const [day, rows] of groups) {
    const tbody = h('tbody', null)
    if (byDay) tbody.appendChild(h('tr', { class: 'day' }, h('th', { scope: 'colgroup', colspan: columns.length, text: `${day} · ${rows.length} record${rows.length === 1 ? '' : 's'}` })))
    for (const r of rows) {
      const t = new Date(r.at).getTime()
      const stamp = h(
        'span',
        { class: 'when' },
        h('time', { datetime: r.at, title: absolute(r.at), text: byDay ? clockOf(r.at, short_) : `${day} ${clockOf(r.at, short_)}` }),
        short_ && sorted.length > 1 ? h('span', { class: 'offset', text: ` +${duration(t - first)}` }) : null,
        ' ',
        h('span', { class: 'rel', 'data-rel': r.at, text: relative(r.at) }),
      )
      tbody.appendChild(
        h(
          'tr',
          { 'data-seq': r.seq, class: `type-${r.type.replace(/[^a-z0-9]/gi, '-')}` },
          h('th', { scope: 'row', 'data-label': columns[0] }, h('span', { class: 'seq', text: `#${r.seq} ` }), stamp),
          h('td', { 'data-label': columns[1] }, h('code', { text: r.type })),
          h('td', { 'data-label': columns[2] }, r.decision ? h('span', { class: `decision d-${r.decision.replace(/[^a-z_]/gi, '')}`, text: r.decision }) : '—'),
          h('td', { 'data-label': columns[3] }, actor(r.agent)),
          h('td', { 'data-label': columns[4] }, taskLink(r.txn)),
          h('td', { 'data-label': columns[5] }, h('span', { text: r.description }), r.code ? h('code', { class: 'code', text: ` ${r.code}` }) : null),
        ),
      )
    }
    bodies.push(tbody)
  }
  const summary = h(
    'p',
    { class: 'span-summary' },
    `${sorted.length} record${sorted.length === 1 ? '' : 's'} over ${duration(span)}: ${absolute(sorted[0]!.at)} → ${absolute(sorted[sorted.length - 1]!.at)}`,
  )
  const t = h('table', { class: 'grid timeline' }, h('caption', { class: 'sr-only', text: caption }), h('thead', null, h('tr', null, columns.map((c) => h('th', { scope: 'col', text: c })))), bodies)
  return h('div', null, summary, h('div', { class: 'table-wrap', role: 'region', 'aria-label': caption, tabindex: 0 }, t))
}

/** "Next page" / "First page" links; the cursor lives in the URL so Back and reload keep the page. */
export function pager(page: Page<unknown>, params: URLSearchParams, path: string): HTMLElement {
  const nav = h('nav', { class: 'pager', 'aria-label': 'Pages' })
  const count = h('span', { class: 'muted', text: `${page.items.length} shown${page.total !== undefined ? ` of ${page.total}` : ''}` })
  nav.appendChild(count)
  if (params.has('cursor')) {
    const p = new URLSearchParams(params)
    p.delete('cursor')
    nav.appendChild(link(`${path}${p.size ? `?${p}` : ''}`, '« First page', { class: 'button' }))
  }
  if (page.next) {
    const p = new URLSearchParams(params)
    p.set('cursor', page.next)
    nav.appendChild(link(`${path}?${p}`, 'Next page »', { class: 'button', rel: 'next' }))
  }
  return nav
}

/** An error shown in place of a view's results. */
export function failure(err: unknown): HTMLElement {
  const message = err instanceof Error ? err.message : 'something went wrong'
  return h('p', { class: 'error', role: 'alert', text: message })
}
