import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { challengeFor, MandateError, type Guard } from '@mandate/core'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js'
import { ErrorCode, JSONRPCMessageSchema, SUPPORTED_PROTOCOL_VERSIONS, type RequestId } from '@modelcontextprotocol/sdk/types.js'
import type { AuditSink } from './audit.js'
import { hasCallInFlight, type GuardedMcpServer } from './guard_server.js'
import { authorizeHttpMessage } from './http_authorize.js'
import { httpVerificationOf } from './verified_marks.js'
import { answerAndClose, answerTooLarge, assertSingleHeaderLines, closeAfterUnreadBody, DEFAULT_BODY_TIMEOUT_MS, isBodyTimeout, readBodyWithin } from './http_request_limits.js'
import { protectedResourceMetadata, protectedResourceMetadataUrl } from './protected_resource_metadata.js'
import { addressBucket, SessionTable, type SessionLimits } from './session_table.js'
import { stderrAuditFailures } from './audit_stderr.js'
import { isCredentialHeader } from './guard_transport.js'

export interface McpHttpHandlerOptions {
  /** The verifier; its `audience` is the resource URI (the public URL of the MCP endpoint). */
  guard: Guard
  /** A guarded server per MCP session (each session needs its own `McpServer`); share one Guard across them. */
  createServer: () => GuardedMcpServer | Promise<GuardedMcpServer>
  /** Largest accepted POST body in bytes (default 1 MiB); larger ones are answered 413 `PAYLOAD_TOO_LARGE`. */
  maxBodyBytes?: number
  /**
   * Time a client has to send a whole POST body (default 10 000 ms); a slower one is answered 408 and
   * the connection closed. It also bounds how long the rest of a refused request's body is read and
   * discarded (at most 5 s) before the connection is closed.
   */
  bodyTimeoutMs?: number
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
  /**
   * Bounds on open MCP sessions (see {@link SessionLimits}; defaults: 1024 sessions, 128 of them
   * unauthenticated, 16 unauthenticated per remote address, a 60 s grace period before an
   * unauthenticated session may be closed for room, 32 authenticated per actor, closed after 30
   * minutes without a request). `initialize` needs no credential (a Mandate credential is bound to
   * one tool call), so anyone can open a session: it counts as unauthenticated until it has carried a
   * verified `tools/call`. When no room can be made, `initialize` is refused with 503
   * `CAPACITY_EXCEEDED` (`Retry-After`).
   */
  sessionLimits?: SessionLimits
  /**
   * The client address that unauthenticated sessions are budgeted by (default
   * `req.socket.remoteAddress`). Behind a reverse proxy, return the client address the proxy
   * forwards (and that only it can set), or every client shares the proxy's budget.
   */
  remoteAddress?: (req: IncomingMessage) => string | undefined
  /**
   * Receives errors that are not the client's fault (audit sink failures, transport errors). By
   * default, audit failures (`AUDIT_BROKEN`: a call was decided but could not be recorded, e.g. the
   * server's key is not registered with the Authority) are written to stderr, at most one line every
   * 10 s with a count of those left out; nothing else is logged.
   */
  onError?: (error: Error) => void
}

export type McpHttpHandler = ((req: IncomingMessage, res: ServerResponse) => Promise<void>) & {
  /** Close every open MCP session. */
  close(): Promise<void>
  /** Number of open MCP sessions (read live). */
  readonly sessions: number
}

interface Session {
  transport: StreamableHTTPServerTransport
  server: GuardedMcpServer
  /** Set when the SDK assigned the session id (the initialize was accepted) and the table holds it. */
  stored: boolean
  /** The remote address bucket the session was opened from. */
  address: string
  /** Ids of tool calls of this session being authorized, until the session's transport has admitted them. */
  authorizing: Set<RequestId>
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers })
  res.end(JSON.stringify(body))
}

function rpcError(res: ServerResponse, status: number, code: number, message: string, data?: Record<string, unknown>, headers?: Record<string, string>, id: RequestId | null = null): void {
  sendJson(res, status, { jsonrpc: '2.0', error: { code, message, ...(data ? { data } : {}) }, id }, headers)
}

/** `error.data` of a refusal answered before any message reached a session (same members as a refused call). */
function refusalData(err: MandateError): Record<string, unknown> {
  return { mandate_code: err.code, oauth_error: err.oauthError, status: err.status }
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

/**
 * Whether a request names an `MCP-Protocol-Version` this server does not speak (MCP transports:
 * "an invalid or unsupported MCP-Protocol-Version" gets 400). A request without the header is
 * accepted (the version negotiated at initialize, or 2025-03-26, applies).
 */
function unsupportedProtocolVersion(req: IncomingMessage): boolean {
  const v = req.headers['mcp-protocol-version']
  return v !== undefined && !(typeof v === 'string' && SUPPORTED_PROTOCOL_VERSIONS.includes(v))
}

function unsupportedVersionAnswer(res: ServerResponse): void {
  rpcError(res, 400, -32000, `Bad Request: Unsupported protocol version (supported versions: ${SUPPORTED_PROTOCOL_VERSIONS.join(', ')})`)
}

/** Whether a POST body is (or, batched, contains) an initialize request: the SDK's test for skipping the version header check. */
function hasInitialize(msg: unknown): boolean {
  return Array.isArray(msg) ? msg.some(isInitialize) : isInitialize(msg)
}

function isInitialize(msg: unknown): boolean {
  return typeof msg === 'object' && msg !== null && !Array.isArray(msg) && (msg as { method?: unknown }).method === 'initialize'
}

function isToolCallMessage(msg: unknown): boolean {
  return typeof msg === 'object' && msg !== null && !Array.isArray(msg) && (msg as { method?: unknown }).method === 'tools/call'
}

/**
 * Whether a POST body is a single `tools/call` that the SDK's JSON-RPC schema refuses (an id that is
 * not a string or a safe integer, `jsonrpc` other than "2.0", members besides jsonrpc, id, method
 * and params such as `result` / `error`, params that are not an object). The SDK would answer it 400
 * without running anything; it is answered so here, before the guard sees (and spends) its
 * single-use credential. (A batch holding a tools/call is refused before any verification anyway.)
 */
function malformedToolCall(body: unknown): boolean {
  return isToolCallMessage(body) && !JSONRPCMessageSchema.safeParse(body).success
}

/**
 * The answer the SDK would give a POST it refuses for its headers (406 without both
 * `application/json` and `text/event-stream` in Accept, 415 for a Content-Type other than
 * application/json), or undefined. Given before verification for a tools/call: the SDK checks these
 * only after the guard has spent the call's single-use credential, and the call would then be
 * neither run nor audited.
 */
function refusedMediaTypes(req: IncomingMessage): { status: number; message: string } | undefined {
  const accept = req.headers.accept ?? ''
  if (!accept.includes('application/json') || !accept.includes('text/event-stream')) {
    return { status: 406, message: 'Not Acceptable: Client must accept both application/json and text/event-stream' }
  }
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase()
  if (type !== 'application/json') return { status: 415, message: 'Unsupported Media Type: Content-Type must be application/json' }
  return undefined
}

/** The JSON-RPC ids of the requests in a POST body (one message or a batch). */
function requestIdsOf(body: unknown): RequestId[] {
  const ids: RequestId[] = []
  for (const m of Array.isArray(body) ? body : [body]) {
    if (typeof m !== 'object' || m === null || typeof (m as { method?: unknown }).method !== 'string') continue
    const id = (m as { id?: unknown }).id
    if (typeof id === 'string' || typeof id === 'number') ids.push(id)
  }
  return ids
}

/**
 * A `node:http` request handler serving a guarded MCP server over Streamable HTTP at the path of the
 * guard's audience, plus its RFC 9728 metadata at `/.well-known/oauth-protected-resource<path>` (and
 * at the root form). Sessions are stateful: one `initialize`, then many calls, each `tools/call`
 * verified at the HTTP layer (see {@link authorizeHttpMessage}). The DPoP `htu` is checked against the
 * resource's configured public origin plus the request path, never against the Host header.
 * Requests that repeat a single-value header line (two `Authorization` lines, …) are refused with 400
 * first, then requests whose `Host` (or `Origin`, when sent) is not allowed with 403 (DNS-rebinding
 * protection; see `allowedHosts` / `allowedOrigins`). Bodies over `maxBodyBytes` are answered 413
 * (`PAYLOAD_TOO_LARGE`) and bodies not received within `bodyTimeoutMs` 408, before the connection is
 * closed; the unread rest of a refused request's body is discarded within bounds; open sessions are
 * bounded (`sessionLimits`). A request after `initialize` whose `MCP-Protocol-Version` is not one of
 * the SDK's `SUPPORTED_PROTOCOL_VERSIONS` is answered 400 before it is authorized (its credential is
 * never spent), and so is a `tools/call` the SDK's JSON-RPC schema would refuse. While a tool call
 * is being authorized or runs, a request of any method with its id in the same session is answered
 * 400 (JSON-RPC invalid request) before the SDK sees it (it would take over the id's reply stream).
 */
export function createMcpHttpHandler(options: McpHttpHandlerOptions): McpHttpHandler {
  const guard = options.guard
  const resource = new URL(guard.audience)
  if (resource.protocol !== 'http:' && resource.protocol !== 'https:') throw new MandateError('CONFIG_INVALID', 'the guard audience must be the http(s) URL of the MCP endpoint')
  const endpointPath = resource.pathname
  const metadataUrl = protectedResourceMetadataUrl(resource)
  const metadata = protectedResourceMetadata({
    resource: guard.audience,
    authorizationServers: [guard.issuer],
    ...(options.scopesSupported ? { scopesSupported: options.scopesSupported } : {}),
    ...(options.resourceName ? { resourceName: options.resourceName } : {}),
  })
  const maxBody = options.maxBodyBytes ?? 1024 * 1024
  if (!Number.isSafeInteger(maxBody) || maxBody < 1) throw new MandateError('CONFIG_INVALID', 'maxBodyBytes must be a positive integer')
  const bodyTimeout = options.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS
  if (!Number.isSafeInteger(bodyTimeout) || bodyTimeout < 1) throw new MandateError('CONFIG_INVALID', 'bodyTimeoutMs must be a positive integer')
  const hosts = new Set<string>()
  for (const h of options.allowedHosts ?? [resource.host]) {
    const n = typeof h === 'string' ? normalizeHost(h, resource.protocol) : undefined
    if (!n) throw new MandateError('CONFIG_INVALID', `allowedHosts: "${String(h)}" is not a host or host:port`)
    hosts.add(n)
  }
  const origins = new Set<string>()
  for (const o of options.allowedOrigins ?? [resource.origin]) {
    const n = typeof o === 'string' ? normalizeOrigin(o) : undefined
    if (!n) throw new MandateError('CONFIG_INVALID', `allowedOrigins: "${String(o)}" is not an origin`)
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
  const report = options.onError ?? stderrAuditFailures()
  const closeSession = (s: Session) => {
    s.server.close().catch((e: unknown) => report(e instanceof Error ? e : new Error(String(e))))
  }
  const sessions = new SessionTable<Session>(options.sessionLimits, closeSession)
  const remoteAddressOf = options.remoteAddress ?? ((req: IncomingMessage) => req.socket.remoteAddress)

  async function newSession(address: string): Promise<Session> {
    const server = await options.createServer()
    if (server.guard.audience !== guard.audience || server.guard.issuer !== guard.issuer) {
      throw new MandateError('CONFIG_INVALID', 'the session server must be guarded for the same audience and issuer')
    }
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        session.stored = true
        sessions.add(id, session, address)
      },
    })
    const session: Session = { transport, server, stored: false, address, authorizing: new Set() }
    await server.connect(transport)
    // what the server's protocol layer hears from the guarded transport (an allowed call whose audit
    // record failed, transport errors) reaches onError too
    const protocol = server.server.server
    const ownError = protocol.onerror
    protocol.onerror = (e) => {
      ownError?.(e)
      report(e)
    }
    // after connect: the guarded transport and the server have installed their own onclose by now
    const chained = transport.onclose
    transport.onclose = () => {
      chained?.()
      if (transport.sessionId) sessions.delete(transport.sessionId)
    }
    return session
  }

  /** Drop Authorization and DPoP from a request about to reach the SDK (its raw header list is what the SDK reads). */
  function withoutCredentialHeaders(req: IncomingMessage): void {
    const raw = req.rawHeaders
    const kept: string[] = []
    for (let i = 0; i + 1 < raw.length; i += 2) if (!isCredentialHeader(raw[i] as string)) kept.push(raw[i] as string, raw[i + 1] as string)
    // an own property: an HTTP/2 compatibility request has a getter and no setter for rawHeaders
    Object.defineProperty(req, 'rawHeaders', { value: kept, writable: true, configurable: true, enumerable: true })
    delete req.headers.authorization
    delete req.headers.dpop
  }

  /** Authorize one POSTed message at the HTTP layer, then hand it to the session's transport. */
  async function deliver(req: IncomingMessage, res: ServerResponse, s: Session, sessionId: string | undefined, path: string, body: unknown): Promise<void> {
    // the SDK maps each request id to the stream its reply goes to: a request reusing the id of a
    // tool call still being authorized or running would take that mapping over (the call's result
    // would go nowhere); it is refused before the SDK, or the guard, sees it
    const busy = requestIdsOf(body).find((id) => s.authorizing.has(id) || hasCallInFlight(s.server, id))
    if (busy !== undefined) {
      const data = { mandate_code: 'INVALID_REQUEST', oauth_error: 'invalid_request', status: 400 }
      return rpcError(res, 400, ErrorCode.InvalidRequest, 'Invalid Request: a tool call with this request id is still running in this session', data, undefined, Array.isArray(body) ? null : busy)
    }
    const callId = isToolCallMessage(body) ? requestIdsOf(body)[0] : undefined
    // reserved from before the first await until the transport has admitted the call (in flight)
    if (callId !== undefined) s.authorizing.add(callId)
    try {
      const verdict = await authorizeHttpMessage(
        {
          guard,
          requirements: (tool) => s.server.requirements(tool),
          audit: options.audit ?? s.server.audit,
          resourceMetadataUrl: metadataUrl.href,
          onError: report,
        },
        { method: 'POST', url: new URL(path, resource.origin), headers: req.headers as Record<string, string | string[] | undefined>, rawHeaders: req.rawHeaders, message: body },
      )
      if (!verdict.ok) return sendJson(res, verdict.status, verdict.body, verdict.headers)
      const authed = req as IncomingMessage & { auth?: AuthInfo }
      if (verdict.authInfo) {
        authed.auth = verdict.authInfo
        // a verified call: this session is no longer a stranger's, and is never evicted for room
        const actor = httpVerificationOf(verdict.authInfo)?.call.actor
        if (sessionId && actor) sessions.authenticate(sessionId, actor)
      } else delete authed.auth
      // verified: the SDK copies the request's headers into every handler's `extra.requestInfo`,
      // and a tool that logs or forwards them would hand out the credential and its proof
      withoutCredentialHeaders(authed)
      await s.transport.handleRequest(authed, res, body)
    } finally {
      if (callId !== undefined) s.authorizing.delete(callId)
    }
  }

  const handler = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    try {
      try {
        assertSingleHeaderLines(req.rawHeaders)
      } catch (err) {
        closeAfterUnreadBody(req, res, bodyTimeout)
        const refusal = err as MandateError
        const c = challengeFor(refusal, { resourceMetadata: metadataUrl.href })
        return sendJson(res, c.status, { ...c.body, mandate_code: refusal.code }, c.headers)
      }
      if (!hostAndOriginAllowed(req)) {
        // before anything else (metadata, sessions, body): a rebound name or a foreign page gets nothing
        closeAfterUnreadBody(req, res, bodyTimeout)
        return rpcError(res, 403, -32000, 'Forbidden: Host or Origin not allowed')
      }
      const path = new URL(req.url ?? '/', resource.origin).pathname
      if (path === metadataUrl.pathname || path === '/.well-known/oauth-protected-resource') {
        closeAfterUnreadBody(req, res, bodyTimeout)
        if (req.method !== 'GET') return sendJson(res, 405, { error: 'method_not_allowed' }, { allow: 'GET' })
        return sendJson(res, 200, metadata, { 'cache-control': 'max-age=300' })
      }
      if (path !== endpointPath) {
        closeAfterUnreadBody(req, res, bodyTimeout)
        return sendJson(res, 404, { error: 'not_found' })
      }
      const sid = req.headers['mcp-session-id']
      const sessionId = typeof sid === 'string' ? sid : undefined
      if (req.method !== 'POST') {
        if (unsupportedProtocolVersion(req)) {
          closeAfterUnreadBody(req, res, bodyTimeout)
          return unsupportedVersionAnswer(res)
        }
        const session = sessionId ? sessions.touch(sessionId) : undefined
        if (!session) {
          closeAfterUnreadBody(req, res, bodyTimeout)
          return rpcError(res, sessionId ? 404 : 400, -32000, sessionId ? 'Session not found' : 'Mcp-Session-Id header is required')
        }
        return await session.transport.handleRequest(req, res)
      }
      let text: string
      try {
        text = await readBodyWithin(req, maxBody, bodyTimeout)
      } catch (err) {
        if (MandateError.is(err) && err.code === 'PAYLOAD_TOO_LARGE') return answerTooLarge(req, res, err, bodyTimeout)
        if (isBodyTimeout(err)) return answerAndClose(req, res, 408, err, bodyTimeout)
        throw err
      }
      let body: unknown
      try {
        body = JSON.parse(text)
      } catch {
        return rpcError(res, 400, -32700, 'Parse error')
      }
      // before any session work or authorization: a call in a version this server does not speak is
      // answered 400 without the guard ever seeing (and spending) its single-use credential;
      // initialize is exempt (it negotiates the version in its body, as the SDK does)
      if (!hasInitialize(body) && unsupportedProtocolVersion(req)) return unsupportedVersionAnswer(res)
      // likewise a tools/call the SDK would refuse as malformed JSON-RPC (answered as the SDK does)
      if (malformedToolCall(body)) return rpcError(res, 400, ErrorCode.ParseError, 'Parse error: Invalid JSON-RPC message')
      const media = isToolCallMessage(body) ? refusedMediaTypes(req) : undefined
      if (media) return rpcError(res, media.status, -32000, media.message)
      let session = sessionId ? sessions.touch(sessionId) : undefined
      let address = ''
      if (sessionId && !session) return rpcError(res, 404, -32001, 'Session not found')
      let fresh = false
      if (!session) {
        if (!isInitialize(body)) return rpcError(res, 400, -32000, 'Bad Request: no valid session')
        address = addressBucket(remoteAddressOf(req))
        try {
          sessions.reserve(address)
        } catch (err) {
          if (MandateError.is(err) && err.code === 'CAPACITY_EXCEEDED') return rpcError(res, 503, -32000, err.message, refusalData(err), { 'retry-after': '30' })
          throw err
        }
        try {
          session = await newSession(address)
        } catch (err) {
          sessions.release(address)
          throw err
        }
        fresh = true
      }
      const s = session
      try {
        await deliver(req, res, s, sessionId, path, body)
      } finally {
        if (fresh && !s.stored) {
          // the SDK refused this initialize (or it failed): nothing holds the session, so close it now
          sessions.release(s.address)
          closeSession(s)
        }
      }
    } catch (err) {
      report(err instanceof Error ? err : new Error(String(err)))
      if (!res.headersSent) rpcError(res, 500, -32603, 'Internal error')
      else res.end()
    }
  }

  // a getter: Object.assign would copy the count once (always 0) instead of reading it live
  return Object.defineProperties(handler, {
    close: {
      value: async () => {
        await Promise.all(sessions.drain().map((s) => s.server.close()))
      },
    },
    sessions: { get: () => sessions.size, enumerable: true },
  }) as McpHttpHandler
}
