/**
 * The Authority's HTTP server (Hono on @hono/node-server). Either wraps an existing Authority, or
 * binds first and creates the Authority with `issuer = server.url` (for port 0).
 */
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import type { Hono } from 'hono'
import { MandateError } from '@mandate/core'
import { createAuthority, resolveAuthorityOptions, type Authority, type AuthorityOptions } from '../authority.js'
import { createAuthorityApp } from './app.js'
import type { MetricsRouteOptions } from './metrics_route.js'
import type { RequestLogger } from '../observability/logger.js'

export interface AuthorityServerOptions {
  port?: number
  /** Default 127.0.0.1. */
  hostname?: string
  /** Mount extra routes (e.g. the dashboard) before the server starts answering. */
  extend?: (app: Hono, authority: Authority) => void
  /** One JSON log line per request (a pino Logger; see `createLogger`). Default: no request log. */
  logger?: RequestLogger
  /** Serve Prometheus metrics at `/metrics` (true: defaults; `{ bearerToken }` to protect it). Default: off. */
  metrics?: boolean | MetricsRouteOptions
  /** ms `close()` waits for requests in flight before cutting their connections. Default 10 000. */
  drainTimeoutMs?: number
  /**
   * ms within which a whole request (headers and body) must arrive, or Node answers 408 and closes
   * the connection; the headers alone get at most 10 s of it. Default 20 000 (Node's own default is
   * 300 s: one slow client could hold a connection for minutes). Answers are not bounded by it:
   * long polls and event streams stay open.
   */
  requestTimeoutMs?: number
}

export interface AuthorityServerBootstrap extends AuthorityServerOptions {
  /** Options for a new Authority whose issuer is the bound URL (or `issuer` when given). */
  authority?: Omit<AuthorityOptions, 'issuer'> & { issuer?: string }
}

export interface AuthorityServer {
  /** http://hostname:port */
  readonly url: string
  readonly port: number
  readonly app: Hono
  readonly authority: Authority
  /**
   * Graceful stop: `/readyz` turns 503, the listener closes (new connections are refused), event
   * streams end, requests in flight complete (each answer closes its connection) for up to
   * `drainTimeoutMs`, then remaining connections are cut. Closes the Authority (flushing its audit
   * writes and notification worker, closing its store) only when this server created it.
   */
  close(options?: { drainTimeoutMs?: number }): Promise<void>
  /** Requests being answered now. */
  readonly inFlight: number
}

// Every option by name: a misspelt one (`authorty: { policy }`) is refused instead of silently
// serving an Authority without it. A key added to the interfaces but not here fails typecheck.
const SERVER_OPTIONS = { port: true, hostname: true, extend: true, logger: true, metrics: true, drainTimeoutMs: true, requestTimeoutMs: true } as const satisfies Record<keyof AuthorityServerOptions, true>
const BOOTSTRAP_OPTIONS = { ...SERVER_OPTIONS, authority: true } as const satisfies Record<keyof AuthorityServerBootstrap, true>

/**
 * Refuse unknown or ill-typed server options (CONFIG_INVALID) before anything is bound or opened.
 * @internal
 */
export function checkServerOptions(options: unknown, where: string, known: Readonly<Record<string, true>> = SERVER_OPTIONS): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw new MandateError('CONFIG_INVALID', `${where} needs an options object`)
  for (const k of Object.keys(options)) {
    if (!Object.hasOwn(known, k)) throw new MandateError('CONFIG_INVALID', `unknown ${where} option "${k.slice(0, 40)}" (known: ${Object.keys(known).join(', ')})`, { detail: { option: k.slice(0, 40) } })
  }
  const { port, hostname, extend, logger, metrics, drainTimeoutMs } = options as AuthorityServerOptions
  if (port !== undefined && (!Number.isSafeInteger(port) || port < 0 || port > 65535)) throw new MandateError('CONFIG_INVALID', 'port must be an integer 0..65535')
  if (hostname !== undefined && (typeof hostname !== 'string' || hostname === '')) throw new MandateError('CONFIG_INVALID', 'hostname must be a host name or address')
  if (extend !== undefined && typeof extend !== 'function') throw new MandateError('CONFIG_INVALID', 'extend must be a function (app, authority) => void')
  if (logger !== undefined && (typeof logger !== 'object' || logger === null || typeof logger.info !== 'function' || typeof logger.error !== 'function')) throw new MandateError('CONFIG_INVALID', 'logger must be a pino Logger (info, warn, error)')
  if (metrics !== undefined && typeof metrics !== 'boolean') {
    if (typeof metrics !== 'object' || metrics === null || Array.isArray(metrics)) throw new MandateError('CONFIG_INVALID', 'metrics must be true or { path?, bearerToken?, processMetrics? }')
    for (const k of Object.keys(metrics)) if (k !== 'path' && k !== 'bearerToken' && k !== 'processMetrics') throw new MandateError('CONFIG_INVALID', `unknown metrics option "${k.slice(0, 40)}" (known: path, bearerToken, processMetrics)`)
    if (metrics.path !== undefined && (typeof metrics.path !== 'string' || !/^\/[A-Za-z0-9._~/-]{0,127}$/.test(metrics.path))) throw new MandateError('CONFIG_INVALID', 'metrics.path must be a path like /metrics')
    if (metrics.bearerToken !== undefined && (typeof metrics.bearerToken !== 'string' || metrics.bearerToken.length < 16)) throw new MandateError('CONFIG_INVALID', 'metrics.bearerToken must be a string of at least 16 characters')
  }
  if (drainTimeoutMs !== undefined && (!Number.isSafeInteger(drainTimeoutMs) || drainTimeoutMs < 0 || drainTimeoutMs > 600_000)) throw new MandateError('CONFIG_INVALID', 'drainTimeoutMs must be an integer 0..600000')
  const { requestTimeoutMs } = options as AuthorityServerOptions
  if (requestTimeoutMs !== undefined && (!Number.isSafeInteger(requestTimeoutMs) || requestTimeoutMs < 1000 || requestTimeoutMs > 300_000)) throw new MandateError('CONFIG_INVALID', 'requestTimeoutMs must be an integer 1000..300000')
}

// Deadlines for receiving a request (requestTimeoutMs): every request the Authority takes is small
// (forms, JSON bodies of a few KiB), so Node's defaults (60 s for the headers, 300 s for the whole
// request) would only let slow clients hold connections. Node checks them every second here.
const HEADERS_TIMEOUT_MS = 10_000
const REQUEST_TIMEOUT_MS = 20_000

function listen(fetchHandler: (req: Request, env?: unknown) => Response | Promise<Response>, port: number, hostname: string, requestTimeoutMs = REQUEST_TIMEOUT_MS): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = serve({
      fetch: fetchHandler, port, hostname,
      serverOptions: { headersTimeout: Math.min(HEADERS_TIMEOUT_MS, requestTimeoutMs), requestTimeout: requestTimeoutMs, connectionsCheckingInterval: 1000 },
    }) as Server
    server.once('error', reject)
    server.once('listening', () => resolve(server))
  })
}

export async function createAuthorityServer(authority: Authority, options?: AuthorityServerOptions): Promise<AuthorityServer>
export async function createAuthorityServer(options: AuthorityServerBootstrap): Promise<AuthorityServer>
export async function createAuthorityServer(a: Authority | AuthorityServerBootstrap, b: AuthorityServerOptions = {}): Promise<AuthorityServer> {
  const given = typeof a === 'object' && a !== null && typeof (a as Authority).token === 'function' ? (a as Authority) : undefined
  const opts: AuthorityServerBootstrap = given ? b : (a as AuthorityServerBootstrap | undefined) ?? {}
  // checked before the port is bound and before the Authority (and its store or key file) exists
  checkServerOptions(opts, 'createAuthorityServer', given ? SERVER_OPTIONS : BOOTSTRAP_OPTIONS)
  if (!given && opts.authority !== undefined) resolveAuthorityOptions(opts.authority, 'createAuthorityServer authority')
  const hostname = opts.hostname ?? '127.0.0.1'
  // node-server's env ({ incoming, outgoing }) goes through so body.ts can read the Node request directly
  let handler: ((req: Request, env?: unknown) => Response | Promise<Response>) | undefined
  const server = await listen((req, env) => (handler ? handler(req, env) : new Response('starting', { status: 503 })), opts.port ?? 0, hostname, opts.requestTimeoutMs)
  const port = (server.address() as AddressInfo).port
  const host = hostname.includes(':') ? `[${hostname}]` : hostname
  const url = `http://${host}:${port}`
  let authority: Authority
  try {
    authority = given ?? (await createAuthority({ ...(opts.authority ?? {}), issuer: opts.authority?.issuer ?? url }))
  } catch (err) {
    server.close()
    throw err
  }
  const now = (opts.authority?.now ?? Date.now)
  let draining = false
  // requests counted from arrival until their response is finished or their connection is gone
  let inFlight = 0
  let drained: (() => void) | undefined
  server.on('request', (_req, res) => {
    inFlight++
    res.once('close', () => {
      inFlight--
      if (inFlight === 0) drained?.()
    })
  })
  const { app, closeStreams } = createAuthorityApp(authority, {
    now, draining: () => draining,
    ...(opts.logger ? { logger: opts.logger } : {}), ...(opts.metrics !== undefined ? { metrics: opts.metrics } : {}),
  })
  opts.extend?.(app, authority)
  handler = (req, env) => app.fetch(req, env as Record<string, unknown> | undefined)
  let closing: Promise<void> | undefined
  const drainDefault = opts.drainTimeoutMs ?? 10_000
  return {
    url, port, app, authority,
    get inFlight() { return inFlight },
    close(options = {}) {
      closing ??= (async () => {
        draining = true
        const listenerClosed = new Promise<void>((resolve) => server.close(() => resolve()))
        // event streams never end by themselves; idle keep-alive connections hold no request
        closeStreams()
        server.closeIdleConnections?.()
        if (inFlight > 0) {
          const timeout = options.drainTimeoutMs ?? drainDefault
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, timeout)
            timer.unref?.()
            drained = () => {
              clearTimeout(timer)
              resolve()
            }
          })
        }
        server.closeAllConnections?.()
        await listenerClosed
        if (!given) await authority.close()
      })()
      return closing
    },
  }
}
