/**
 * The dashboard's page and asset routes: the content-hashed bundle (immutable, cacheable for a year)
 * and the application shell under every client-side route, so deep links such as
 * `/dashboard/approvals/<id>` load the app, which then routes in the browser (history API).
 */
import type { Context, Env, Hono } from 'hono'
import type { DashboardIdentity } from '../sessions.js'
import { loadDashboardBundle } from './bundle.js'
import { bundleMissingPage, dashboardPage, loginRequiredPage } from './page.js'

/** What the page routes need from the dashboard: its mount point, the session lookup, the security headers. */
export interface PageRouteDeps {
  base: string
  /** The session, only if its principal is still admitted (registered, enabled, admin or approver). */
  session(c: Context): Promise<{ csrf: string; identity: DashboardIdentity } | undefined>
  secure(c: Context): void
}

/** Client-side routes the shell is served under (the browser router draws the view). */
export const PAGE_ROUTES = ['', '/', '/tasks', '/tasks/:txn', '/approvals', '/approvals/:id', '/calls', '/agents', '/audit'] as const

const SIGN_IN = 'Sign in with a one-time login link.'

/** A key on a dark tile: the dashboard's icon. */
const FAVICON = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#1f2937"/><circle cx="12" cy="16" r="5" fill="none" stroke="#fbbf24" stroke-width="3"/><path d="M17 16h10M23 16v5M27 16v4" stroke="#fbbf24" stroke-width="3"/></svg>'

export function installDashboardPages<E extends Env>(app: Hono<E>, deps: PageRouteDeps): void {
  const { base } = deps
  app.get(`${base}/assets/:name`, (c) => {
    deps.secure(c)
    const bundle = loadDashboardBundle()
    const name = c.req.param('name')
    const asset = bundle && [bundle.js, bundle.css].find((a) => a.name === name)
    if (!asset) return c.text('not found', 404)
    // the name carries the content hash: a new build is a new URL, so the old bytes may be cached for good
    c.header('cache-control', 'public, max-age=31536000, immutable')
    const type = asset.name.endsWith('.js') ? 'text/javascript; charset=utf-8' : 'text/css; charset=utf-8'
    return c.body(asset.body, 200, { 'content-type': type })
  })

  // the page links this icon, so browsers do not ask for /favicon.ico (a 404 in every console)
  app.get(`${base}/favicon.svg`, (c) => {
    deps.secure(c)
    c.header('cache-control', 'public, max-age=86400')
    return c.body(FAVICON, 200, { 'content-type': 'image/svg+xml' })
  })

  const page = async (c: Context) => {
    deps.secure(c)
    const bundle = loadDashboardBundle()
    if (!bundle) return c.html(bundleMissingPage(base), 503)
    const session = await deps.session(c)
    if (!session) return c.html(loginRequiredPage(base, SIGN_IN, bundle), 401)
    return c.html(dashboardPage(base, session.csrf, session.identity, bundle))
  }
  for (const route of PAGE_ROUTES) app.get(`${base}${route}`, page)
}

export { loginContinuePage, loginRequiredPage } from './page.js'
export { loadDashboardBundle } from './bundle.js'
