/**
 * `GET /metrics` (Prometheus text format) from the Authority's own registry. Off unless enabled; when
 * a bearer token is configured, only `Authorization: Bearer <token>` may read it (compared in
 * constant time). The metrics hold counts and latencies only: no ids, dids or credentials.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { Hono } from 'hono'
import type { Authority } from '../authority.js'

/** How `/metrics` is served. */
export interface MetricsRouteOptions {
  /** Default '/metrics'. */
  path?: string
  /** Require `Authorization: Bearer <token>`. */
  bearerToken?: string
  /** Also export Node process metrics (CPU, memory, event loop, GC). Default true. */
  processMetrics?: boolean
}

const digest = (s: string) => createHash('sha256').update(s).digest()

export function mountMetrics(app: Hono, authority: Authority, options: MetricsRouteOptions): void {
  if (options.processMetrics !== false) authority.metrics.collectProcessMetrics()
  const expected = options.bearerToken === undefined ? undefined : digest(options.bearerToken)
  app.get(options.path ?? '/metrics', async (c) => {
    if (expected) {
      const h = c.req.header('authorization') ?? ''
      const given = h.toLowerCase().startsWith('bearer ') ? h.slice(7).trim() : ''
      if (!timingSafeEqual(digest(given), expected)) {
        // RFC 6750 §3.1: no error code when the request carried no token; invalid_token when it carried a wrong one
        if (given === '') return c.json({ error_description: 'metrics need the bearer token' }, 401, { 'WWW-Authenticate': 'Bearer realm="metrics"', 'Cache-Control': 'no-store' })
        return c.json({ error: 'invalid_token', error_description: 'metrics need the bearer token' }, 401, { 'WWW-Authenticate': 'Bearer realm="metrics", error="invalid_token"', 'Cache-Control': 'no-store' })
      }
    }
    const { body, contentType } = await authority.metrics.expose()
    return c.body(body, 200, { 'Content-Type': contentType, 'Cache-Control': 'no-store' })
  })
}
