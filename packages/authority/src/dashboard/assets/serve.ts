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

export { loginRequiredPage } from './page.js'
export { loadDashboardBundle } from './bundle.js'
