import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { MandateError, type Guard } from '@mandate/core'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js'
import type { AuditSink } from './audit.js'
import type { GuardedMcpServer } from './guard_server.js'
import { authorizeHttpMessage } from './http_authorize.js'
import { protectedResourceMetadata, protectedResourceMetadataUrl } from './protected_resource_metadata.js'

export interface McpHttpHandlerOptions {
  /** The verifier; its `audience` is the resource URI (the public URL of the MCP endpoint). */
  guard: Guard
  /** A guarded server per MCP session (each session needs its own `McpServer`); share one Guard across them. */
  createServer: () => GuardedMcpServer | Promise<GuardedMcpServer>
  /** Largest accepted POST body in bytes (default 1 MiB). */
  maxBodyBytes?: number
  scopesSupported?: readonly string[]
  resourceName?: string
  /** Audit sink for calls refused at the HTTP layer (default: the session server's). */
  audit?: AuditSink
  /**
   * DNS-rebinding protection: the `Host` header values accepted (`host` or `host:port`, compared
   * case-insensitively, default ports filled in). Default: only the resource's own host, i.e. the
   * host of the guard's audience. Add the names a reverse proxy forwards, if it rewrites `Host`.
   */
  allowedHosts?: readonly string[]
  /**
   * Origins accepted in an `Origin` header (browsers send one; other clients usually do not, and a
   * request without `Origin` is accepted). Default: only the resource's own origin. `null` is never
   * accepted unless listed.
   */
  allowedOrigins?: readonly string[]
  /** Receives errors that are not the client's fault (audit sink failures, transport errors). */
  onError?: (error: Error) => void
}

export type McpHttpHandler = ((req: IncomingMessage, res: ServerResponse) => Promise<void>) & {
  /** Close every open MCP session. */
  close(): Promise<void>
  /** Number of open MCP sessions. */
  readonly sessions: number
}

interface Session {
  transport: StreamableHTTPServerTransport
  server: GuardedMcpServer
}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (c: Buffer) => {
      size += c.length
      if (size > limit) {
        reject(new MandateError('INVALID_REQUEST', 'request body is too large', { detail: { limit } }))
        req.destroy()
        return
      }
      chunks.push(c)
    })
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    req.on('error', reject)
  })
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers })
  res.end(JSON.stringify(body))
}

function rpcError(res: ServerResponse, status: number, code: number, message: string): void {
  sendJson(res, status, { jsonrpc: '2.0', error: { code, message }, id: null })
}

const DEFAULT_PORTS: Record<string, string> = { 'http:': '80', 'https:': '443' }

/** `hostname:port` (lowercase, default port filled in) of a Host header value, or undefined when malformed. */
function normalizeHost(value: string, protocol: string): string | undefined {
  if (!/^[A-Za-z0-9.\-:[\]]{1,261}$/.test(value)) return undefined
  let u: URL
  try {
    u = new URL(`${protocol}//${value}`)
  } catch {
    return undefined
  }
  if (u.username || u.password || u.pathname !== '/' || u.search || u.hash) return undefined
  return `${u.hostname.toLowerCase()}:${u.port || DEFAULT_PORTS[protocol] || ''}`
}

function normalizeOrigin(value: string): string | undefined {
  if (value === 'null') return value
  try {
    const u = new URL(value)
    return u.origin === 'null' ? undefined : u.origin.toLowerCase()
  } catch {
    return undefined
  }
}

function isInitialize(msg: unknown): boolean {
  return typeof msg === 'object' && msg !== null && !Array.isArray(msg) && (msg as { method?: unknown }).method === 'initialize'
}

/**
 * A `node:http` request handler serving a guarded MCP server over Streamable HTTP at the path of the
 * guard's audience, plus its RFC 9728 metadata at `/.well-known/oauth-protected-resource<path>` (and
 * at the root form). Sessions are stateful: one `initialize`, then many calls, each `tools/call`
 * verified at the HTTP layer (see {@link authorizeHttpMessage}). The DPoP `htu` is checked against the
 * resource's configured public origin plus the request path, never against the Host header.
 * Requests whose `Host` (or `Origin`, when sent) is not allowed are refused with 403 before anything
 * else (DNS-rebinding protection; see `allowedHosts` / `allowedOrigins`).
 */
export function createMcpHttpHandler(options: McpHttpHandlerOptions): McpHttpHandler {
  const guard = options.guard
  const resource = new URL(guard.audience)
  if (resource.protocol !== 'http:' && resource.protocol !== 'https:') throw new TypeError('the guard audience must be the http(s) URL of the MCP endpoint')
  const endpointPath = resource.pathname
  const metadataUrl = protectedResourceMetadataUrl(resource)
  const metadata = protectedResourceMetadata({
    resource: guard.audience,
    authorizationServers: [guard.issuer],
    ...(options.scopesSupported ? { scopesSupported: options.scopesSupported } : {}),
    ...(options.resourceName ? { resourceName: options.resourceName } : {}),
  })
  const maxBody = options.maxBodyBytes ?? 1024 * 1024
  const hosts = new Set<string>()
  for (const h of options.allowedHosts ?? [resource.host]) {
    const n = typeof h === 'string' ? normalizeHost(h, resource.protocol) : undefined
    if (!n) throw new TypeError(`allowedHosts: "${String(h)}" is not a host or host:port`)
    hosts.add(n)
  }
  const origins = new Set<string>()
  for (const o of options.allowedOrigins ?? [resource.origin]) {
    const n = typeof o === 'string' ? normalizeOrigin(o) : undefined
    if (!n) throw new TypeError(`allowedOrigins: "${String(o)}" is not an origin`)
    origins.add(n)
  }
  /** DNS-rebinding protection: the request must address this resource's host, from an allowed origin (if any). */
  function hostAndOriginAllowed(req: IncomingMessage): boolean {
    const host = req.headers.host
    if (typeof host !== 'string') return false
    const h = normalizeHost(host, resource.protocol)
    if (!h || !hosts.has(h)) return false
    const origin = req.headers.origin
    if (origin === undefined) return true
    const o = typeof origin === 'string' ? normalizeOrigin(origin) : undefined
    return o !== undefined && origins.has(o)
  }
  const sessions = new Map<string, Session>()
  const report = (e: Error) => options.onError?.(e)

  async function newSession(): Promise<Session> {
    const server = await options.createServer()
    if (server.guard.audience !== guard.audience || server.guard.issuer !== guard.issuer) {
      throw new TypeError('the session server must be guarded for the same audience and issuer')
    }
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        sessions.set(id, session)
      },
    })
    const session: Session = { transport, server }
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId)
    }
    await server.connect(transport)
    return session
  }

  const handler = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    try {
      if (!hostAndOriginAllowed(req)) {
        // before anything else (metadata, sessions, body): a rebound name or a foreign page gets nothing
        req.resume()
        return rpcError(res, 403, -32000, 'Forbidden: Host or Origin not allowed')
      }
      const path = new URL(req.url ?? '/', resource.origin).pathname
      if (path === metadataUrl.pathname || path === '/.well-known/oauth-protected-resource') {
        if (req.method !== 'GET') return sendJson(res, 405, { error: 'method_not_allowed' }, { allow: 'GET' })
        return sendJson(res, 200, metadata, { 'cache-control': 'max-age=300' })
      }
      if (path !== endpointPath) return sendJson(res, 404, { error: 'not_found' })
      const sid = req.headers['mcp-session-id']
      const sessionId = typeof sid === 'string' ? sid : undefined
      if (req.method !== 'POST') {
        const session = sessionId ? sessions.get(sessionId) : undefined
        if (!session) return rpcError(res, sessionId ? 404 : 400, -32000, sessionId ? 'Session not found' : 'Mcp-Session-Id header is required')
        return await session.transport.handleRequest(req, res)
      }
      let body: unknown
      try {
        body = JSON.parse(await readBody(req, maxBody))
      } catch (err) {
        if (MandateError.is(err)) return rpcError(res, 413, -32600, err.message)
        return rpcError(res, 400, -32700, 'Parse error')
      }
      let session = sessionId ? sessions.get(sessionId) : undefined
      if (sessionId && !session) return rpcError(res, 404, -32001, 'Session not found')
      if (!session) {
        if (!isInitialize(body)) return rpcError(res, 400, -32000, 'Bad Request: no valid session')
        session = await newSession()
      }
      const s = session
      const verdict = await authorizeHttpMessage(
        {
          guard,
          requirements: (tool) => s.server.requirements(tool),
          audit: options.audit ?? s.server.audit,
          resourceMetadataUrl: metadataUrl.href,
          onError: report,
        },
        { method: 'POST', url: new URL(path, resource.origin), headers: req.headers as Record<string, string | string[] | undefined>, message: body },
      )
      if (!verdict.ok) return sendJson(res, verdict.status, verdict.body, verdict.headers)
      const authed = req as IncomingMessage & { auth?: AuthInfo }
      if (verdict.authInfo) authed.auth = verdict.authInfo
      else delete authed.auth
      await s.transport.handleRequest(authed, res, body)
    } catch (err) {
      report(err instanceof Error ? err : new Error(String(err)))
      if (!res.headersSent) rpcError(res, 500, -32603, 'Internal error')
      else res.end()
    }
  }

  return Object.assign(handler, {
    async close() {
      const all = [...sessions.values()]
      sessions.clear()
      await Promise.all(all.map((s) => s.server.close()))
    },
    get sessions() {
      return sessions.size
    },
  })
}
