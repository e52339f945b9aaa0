/**
 * The request middleware of the Authority's HTTP edge: request id (`x-request-id` in and out),
 * one log line, the route latency histogram. Route labels are Hono's matched patterns, so a path
 * carrying ids never creates a label per id.
 */
import type { Context, MiddlewareHandler } from 'hono'
import { routePath } from 'hono/route'
import type { RequestLogger, RequestLogLine } from '../observability/logger.js'
import type { AuthorityMetrics } from '../observability/metrics.js'
import { requestIdFor } from '../observability/request_id.js'
import { requestInfo } from '../observability/request_info.js'
import { escapeUnsafeDisplay } from '../observability/display_text.js'

// bounded: a path is logged up to this many characters
const MAX_PATH = 256

/** The router has decoded percent-escapes: what a log viewer could be fooled by is logged as \uXXXX text. */
function loggablePath(path: string): string {
  return escapeUnsafeDisplay(path.slice(0, MAX_PATH))
}

function route(c: Context): string | undefined {
  try {
    const r = routePath(c, -1)
    return r && r !== '*' && r !== '/*' ? r : undefined
  } catch {
    return undefined
  }
}

/** The middleware; `logger` undefined logs nothing (the metrics are still kept). */
export function observeRequests(options: { logger?: RequestLogger; metrics: AuthorityMetrics }): MiddlewareHandler {
  const { logger, metrics } = options
  return async (c, next) => {
    const started = performance.now()
    const id = requestIdFor(c.req.header('x-request-id'))
    try {
      await next()
    } finally {
      const ms = performance.now() - started
      const status = c.res.status
      c.res.headers.set('X-Request-Id', id)
      const matched = route(c)
      metrics.requestDuration.observe({ method: c.req.method, route: matched ?? 'unmatched', status: String(status) }, ms / 1000)
      if (logger) {
        const info = requestInfo(c.req.raw)
        const line: RequestLogLine = {
          req_id: id,
          method: c.req.method,
          // c.req.path has no query string (login codes, `since`, filters stay out of the log)
          path: loggablePath(c.req.path),
          ...(matched !== undefined ? { route: matched } : {}),
          status,
          ms: Math.round(ms * 100) / 100,
          ...(info?.principal !== undefined ? { principal: info.principal } : {}),
          ...(info?.code !== undefined ? { mandate_code: info.code } : {}),
        }
        if (status >= 500) logger.error(line, 'request')
        else logger.info(line, 'request')
      }
    }
  }
}
