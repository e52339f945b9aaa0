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

export interface AuthorityServerOptions {
  port?: number
  /** Default 127.0.0.1. */
  hostname?: string
  /** Mount extra routes (e.g. the dashboard) before the server starts answering. */
  extend?: (app: Hono, authority: Authority) => void
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
  /** Stop accepting connections, end event streams. Does not close the Authority unless it created it. */
  close(): Promise<void>
}

// Every option by name: a misspelt one (`authorty: { policy }`) is refused instead of silently
// serving an Authority without it. A key added to the interfaces but not here fails typecheck.
const SERVER_OPTIONS = { port: true, hostname: true, extend: true } as const satisfies Record<keyof AuthorityServerOptions, true>
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
  const { port, hostname, extend } = options as AuthorityServerOptions
  if (port !== undefined && (!Number.isSafeInteger(port) || port < 0 || port > 65535)) throw new MandateError('CONFIG_INVALID', 'port must be an integer 0..65535')
  if (hostname !== undefined && (typeof hostname !== 'string' || hostname === '')) throw new MandateError('CONFIG_INVALID', 'hostname must be a host name or address')
  if (extend !== undefined && typeof extend !== 'function') throw new MandateError('CONFIG_INVALID', 'extend must be a function (app, authority) => void')
}

function listen(fetchHandler: (req: Request) => Response | Promise<Response>, port: number, hostname: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: fetchHandler, port, hostname }) as Server
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
  let handler: ((req: Request) => Response | Promise<Response>) | undefined
  const server = await listen((req) => (handler ? handler(req) : new Response('starting', { status: 503 })), opts.port ?? 0, hostname)
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
  const { app, closeStreams } = createAuthorityApp(authority, { now })
  opts.extend?.(app, authority)
  handler = (req) => app.fetch(req)
  let closed = false
  return {
    url, port, app, authority,
    async close() {
      if (closed) return
      closed = true
      closeStreams()
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections?.()
      })
      if (!given) await authority.close()
    },
  }
}
