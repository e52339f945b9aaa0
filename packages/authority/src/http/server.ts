/**
 * The Authority's HTTP server (Hono on @hono/node-server). Either wraps an existing Authority, or
 * binds first and creates the Authority with `issuer = server.url` (for port 0).
 */
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { serve } from '@hono/node-server'
import type { Hono } from 'hono'
import { createAuthority, type Authority, type AuthorityOptions } from '../authority.js'
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
  const given = typeof (a as Authority).token === 'function' ? (a as Authority) : undefined
  const opts: AuthorityServerBootstrap = given ? b : (a as AuthorityServerBootstrap)
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
