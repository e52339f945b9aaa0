/** The Hono app of the Authority's HTTP edge (docs/protocol.md). */
import { Hono } from 'hono'
import type { Authority } from '../authority.js'
import { mountAdmin } from './admin.js'
import { mountApprovals } from './approvals.js'
import { mountAudit } from './audit.js'
import { mountOAuth } from './oauth.js'

export interface AuthorityApp {
  app: Hono
  /** End open event streams (called by server.close). */
  closeStreams(): void
}

export function createAuthorityApp(authority: Authority, options: { now?: () => number } = {}): AuthorityApp {
  const app = new Hono()
  app.use('*', async (c, next) => {
    await next()
    c.res.headers.set('X-Content-Type-Options', 'nosniff')
  })
  mountOAuth(app, authority, options.now ?? Date.now)
  const closeStreams = mountApprovals(app, authority)
  mountAdmin(app, authority)
  mountAudit(app, authority)
  app.notFound((c) => c.json({ error: 'not_found', error_description: 'no such endpoint' }, 404))
  // never leak messages or stacks of unexpected errors
  app.onError((_err, c) => c.json({ error: 'server_error', error_description: 'the server could not complete the request' }, 500, { 'Cache-Control': 'no-store' }))
  return { app, closeStreams }
}
