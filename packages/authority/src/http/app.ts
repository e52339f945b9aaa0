/** The Hono app of the Authority's HTTP edge (docs/protocol.md). */
import { Hono } from 'hono'
import type { Authority } from '../authority.js'
import type { RequestLogger } from '../observability/logger.js'
import { mountAdmin } from './admin.js'
import { mountApprovals } from './approvals.js'
import { mountAudit } from './audit.js'
import { methodNotAllowedAnswer, notFoundAnswer } from './errors.js'
import { mountHealth } from './health.js'
import { mountMetrics, type MetricsRouteOptions } from './metrics_route.js'
import { observeRequests } from './observe.js'
import { mountOAuth, send } from './oauth.js'

export interface AuthorityApp {
  app: Hono
  /** End open event streams (called by server.close). */
  closeStreams(): void
}

/** Options of the app (createAuthorityServer passes them through). */
export interface AuthorityAppOptions {
  now?: () => number
  /** One JSON line per request (see observability/logger.ts). Default: none. */
  logger?: RequestLogger
  /** Serve Prometheus metrics at `/metrics` (true: defaults). Default: off. */
  metrics?: boolean | MetricsRouteOptions
  /** True while the server drains for shutdown: `/readyz` answers 503 and every answer closes its connection. */
  draining?: () => boolean
}

export function createAuthorityApp(authority: Authority, options: AuthorityAppOptions = {}): AuthorityApp {
  const app = new Hono()
  const draining = options.draining ?? (() => false)
  app.use('*', observeRequests({ metrics: authority.metrics, ...(options.logger ? { logger: options.logger } : {}) }))
  app.use('*', async (c, next) => {
    await next()
    c.res.headers.set('X-Content-Type-Options', 'nosniff')
    // keep-alive connections would otherwise carry new requests into a closing server
    if (draining()) c.res.headers.set('Connection', 'close')
  })
  mountHealth(app, authority, draining)
  if (options.metrics) mountMetrics(app, authority, options.metrics === true ? {} : options.metrics)
  mountOAuth(app, authority, options.now ?? Date.now)
  const closeStreams = mountApprovals(app, authority)
  mountAdmin(app, authority)
  mountAudit(app, authority)
  // no handler for this method and path: 405 with Allow when the path has routes for other methods
  // (RFC 9110 §15.5.6), else 404; both the standard error body, never cached
  const allowed = allowedMethods(app)
  app.notFound((c) => {
    const allow = allowed(c.req.path)
    return send(c, allow.length === 0 || allow.includes(c.req.method) ? notFoundAnswer() : methodNotAllowedAnswer(allow))
  })
  // never leak messages or stacks of unexpected errors (the log names the error's class only)
  app.onError((err, c) => {
    options.logger?.error({ err_type: err instanceof Error ? err.name : typeof err, path: c.req.path.slice(0, 256) }, 'unexpected error')
    return c.json({ error: 'server_error', error_description: 'the server could not complete the request' }, 500, { 'Cache-Control': 'no-store' })
  })
  return { app, closeStreams }
}

/**
 * The methods `app` has routes for at a path, asked of the app's own router (so parameterised and
 * wildcard paths match exactly as they do when dispatching, and a route added later, by `extend`,
 * counts too). Middleware (`use`, method ALL) is not a route. HEAD is allowed wherever GET is:
 * Hono answers HEAD with the GET route's head. Sorted; empty when no route has the path.
 */
export function allowedMethods(app: Hono): (path: string) => string[] {
  let seen = -1
  let methods: string[] = []
  return (path) => {
    if (app.routes.length !== seen) {
      seen = app.routes.length
      methods = [...new Set(app.routes.map((r) => r.method).filter((m) => m !== 'ALL'))]
    }
    const out = new Set<string>()
    for (const m of methods) {
      // each match lists [[handler, route], params]: middleware under ALL is matched too, so look at the route's own method
      if (app.router.match(m, path)[0].some((hit) => hit[0][1].method === m)) out.add(m)
    }
    if (out.has('GET')) out.add('HEAD')
    return [...out].sort()
  }
}
