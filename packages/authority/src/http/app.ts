/** The Hono app of the Authority's HTTP edge (docs/protocol.md). */
import { Hono } from 'hono'
import type { Authority } from '../authority.js'
import type { RequestLogger } from '../observability/logger.js'
import { mountAdmin } from './admin.js'
import { mountApprovals } from './approvals.js'
import { mountAudit } from './audit.js'
import { mountHealth } from './health.js'
import { mountMetrics, type MetricsRouteOptions } from './metrics_route.js'
import { observeRequests } from './observe.js'
import { mountOAuth } from './oauth.js'

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
  app.notFound((c) => c.json({ error: 'not_found', error_description: 'no such endpoint' }, 404))
  // never leak messages or stacks of unexpected errors (the log names the error's class only)
  app.onError((err, c) => {
    options.logger?.error({ err_type: err instanceof Error ? err.name : typeof err, path: c.req.path.slice(0, 256) }, 'unexpected error')
    return c.json({ error: 'server_error', error_description: 'the server could not complete the request' }, 500, { 'Cache-Control': 'no-store' })
  })
  return { app, closeStreams }
}
