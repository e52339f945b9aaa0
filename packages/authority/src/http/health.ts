/**
 * `GET /healthz` (the process answers; nothing else is touched) and `GET /readyz` (the store, the
 * replay store and the signing keys answer; 503 naming what is not ready, by code). Both are
 * unauthenticated and say nothing secret, so load balancers and orchestrators can probe them.
 */
import type { Hono } from 'hono'
import type { Authority } from '../authority.js'
import { NO_STORE } from './errors.js'

export function mountHealth(app: Hono, authority: Authority, draining: () => boolean): void {
  app.get('/healthz', (c) => c.json({ ok: true }, 200, NO_STORE))
  app.get('/readyz', async (c) => {
    // a draining instance stops taking new work first: balancers see it leave before it closes
    if (draining()) return c.json({ ready: false, checks: { shutdown: { ok: false, code: 'SHUTTING_DOWN', ms: 0 } } }, 503, NO_STORE)
    const report = await authority.ready()
    return c.json(report, report.ready ? 200 : 503, NO_STORE)
  })
}
