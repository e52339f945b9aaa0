/**
 * The dashboard front end (bundled by scripts/build_dashboard.mjs). Routes client-side with real
 * URLs under the mount point (history API), so `/dashboard/approvals/<id>` is a link that works;
 * follows the server-sent event stream and refreshes the visible view when the audit log grows.
 */
import type { Overview } from '../api_types.js'
import './styles.css'
import { BASE, get } from './api.js'
import { tickAges } from './components.js'
import { h, replace } from './dom.js'
import type { View, ViewContext, Viewer } from './view.js'
import { agentsView } from './views/agents.js'
import { approvalsView, approvalView } from './views/approvals.js'
import { auditView } from './views/audit.js'
import { callsView } from './views/calls.js'
import { overviewView } from './views/overview.js'
import { taskView } from './views/task.js'
import { tasksView } from './views/tasks.js'

const main = document.getElementById('view') as HTMLElement
let viewer: Viewer = { me: { did: '' }, roles: [], canDecide: false, canAdmin: false }
let current: View | undefined

function resolve(path: string, ctx: ViewContext): View {
  const seg = path.split('/').filter(Boolean).map((s) => decodeURIComponent(s))
  const [a, b] = seg
  if (a === 'tasks' && b) return taskView(ctx, b)
  if (a === 'tasks') return tasksView(ctx)
  if (a === 'approvals' && b) return approvalView(ctx, b)
  if (a === 'approvals') return approvalsView(ctx)
  if (a === 'calls') return callsView(ctx)
  if (a === 'agents') return agentsView(ctx)
  if (a === 'audit') return auditView(ctx)
  return overviewView(ctx)
}

function routePath(): string {
  const p = location.pathname
  return p.startsWith(BASE) ? p.slice(BASE.length) || '/' : '/'
}

function render(focus: boolean): void {
  const path = routePath()
  const ctx: ViewContext = {
    path,
    params: new URLSearchParams(location.search),
    viewer,
    navigate,
    refresh: () => void current?.refresh(),
  }
  current = resolve(path, ctx)
  document.title = `${current.title} — Mandate dashboard`
  replace(main, current.el)
  const section = `/${path.split('/').filter(Boolean)[0] ?? ''}`
  for (const a of Array.from(document.querySelectorAll<HTMLAnchorElement>('nav a[data-nav]'))) {
    if (a.dataset.nav === section) a.setAttribute('aria-current', 'page')
    else a.removeAttribute('aria-current')
  }
  void current.refresh()
  // move focus to the new view's heading so keyboard and screen-reader users land on it
  if (focus) document.getElementById('view-title')?.focus()
}

/** Client-side navigation to a path inside the dashboard (`/tasks?status=active`). */
export function navigate(to: string): void {
  history.pushState(null, '', `${BASE}${to}`)
  render(true)
}

// dashboard links route in the page; modified clicks (new tab) keep the browser's behaviour
document.addEventListener('click', (ev) => {
  if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return
  const a = (ev.target as Element | null)?.closest?.('a')
  if (!a || a.target || a.origin !== location.origin || !a.pathname.startsWith(BASE)) return
  if (a.pathname.startsWith(`${BASE}/api/`) || a.pathname.startsWith(`${BASE}/assets/`)) return
  ev.preventDefault()
  navigate(`${a.pathname.slice(BASE.length) || '/'}${a.search}`)
})
window.addEventListener('popstate', () => render(true))

/** Refreshes the header badges and, debounced, the visible view. */
let pending: number | undefined
function scheduleRefresh(): void {
  if (pending !== undefined) return
  pending = window.setTimeout(() => {
    pending = undefined
    void current?.refresh()
    void refreshStatus()
  }, 250)
}

async function refreshStatus(): Promise<Overview | undefined> {
  const badge = document.getElementById('verify')
  try {
    const ov = await get<Overview>('/overview')
    if (badge) {
      badge.textContent = ov.audit.ok ? `audit verified · ${ov.audit.head ?? 0} records` : 'audit log: VERIFICATION FAILED'
      badge.className = `badge ${ov.audit.ok ? 'ok' : 'bad'}`
    }
    const nav = document.querySelector<HTMLAnchorElement>('nav a[data-nav="/approvals"]')
    if (nav) nav.textContent = ov.counts.pendingApprovals ? `Approvals (${ov.counts.pendingApprovals})` : 'Approvals'
    return ov
  } catch {
    if (badge) {
      badge.textContent = 'audit: unavailable'
      badge.className = 'badge bad'
    }
    return undefined
  }
}

function follow(): void {
  const live = document.getElementById('live')
  const set = (ok: boolean) => {
    if (!live) return
    live.textContent = ok ? 'live' : 'reconnecting…'
    live.className = `badge ${ok ? 'ok' : 'off'}`
  }
  const es = new EventSource(`${BASE}/api/events`)
  es.addEventListener('open', () => set(true))
  es.addEventListener('hello', () => set(true))
  es.addEventListener('error', () => set(false))
  for (const name of ['audit', 'approvals', 'agents']) es.addEventListener(name, scheduleRefresh)
  // the server ends the stream when the signed-in principal is disabled or revoked
  es.addEventListener('logout', () => {
    es.close()
    if (live) {
      live.textContent = 'signed out'
      live.className = 'badge bad'
    }
    replace(main, h('section', { class: 'view' }, h('h1', { id: 'view-title', tabindex: -1, text: 'Signed out' }), h('p', { text: 'Your session has ended. Sign in again with a new login link (mandate dashboard login).' })))
    document.getElementById('view-title')?.focus()
  })
}

async function boot(): Promise<void> {
  const ov = await refreshStatus()
  if (ov) {
    const roles = new Set([...ov.roles, ...(ov.me.role ? [ov.me.role] : [])])
    viewer = { me: ov.me, roles: [...roles], canDecide: roles.has('admin') || roles.has('approver'), canAdmin: roles.has('admin') }
  }
  render(false)
  follow()
  window.setInterval(tickAges, 10_000)
  // ends this session at the Authority (not only the cookie), then shows the sign-in page
  document.getElementById('signout')?.addEventListener('click', () => {
    void fetch(`${BASE}/logout`, { method: 'POST', credentials: 'same-origin' }).finally(() => window.location.assign(`${BASE}/`))
  })
}

void boot()
