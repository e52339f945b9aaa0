import { MandateError, isSecureTransportUrl } from '@mandate/core'
import type { LoadMcpToolsOptions } from '@langchain/mcp-adapters'
import { canonicalUrl } from '../client/fetch_with_credentials.js'

/** A Streamable HTTP server, as `MultiServerMCPClient` configures it. Its resource is its URL. */
export interface MandateHttpConnection {
  transport?: 'http'
  type?: 'http'
  /** The MCP endpoint; credentials go to exactly this URL (https, or http on loopback). */
  url: string
  /** Extra request headers. `Authorization`, `DPoP`, `Proxy-Authorization` and `Cookie` are Mandate's (CONFIG_INVALID). */
  headers?: Record<string, string>
  /** Accepted for drop-in configs; this client never falls back to SSE (SSE cannot carry a per-call credential). */
  automaticSSEFallback?: boolean
}

/** A stdio server (a child process), as `MultiServerMCPClient` configures it, plus its Mandate resource. */
export interface MandateStdioConnection {
  transport?: 'stdio'
  type?: 'stdio'
  command: string
  args?: string[]
  env?: Record<string, string>
  cwd?: string
  encoding?: string
  stderr?: 'overlapped' | 'pipe' | 'ignore' | 'inherit'
  /**
   * The server guard's audience (its canonical resource URI, `https://…`). A stdio server has no URL,
   * so the credentials for its tools are obtained for this audience, and sent only when the server's
   * `initialize` result advertises a Mandate guard for exactly this resource.
   */
  resource: string
}

export type MandateServerConnection = MandateHttpConnection | MandateStdioConnection

/** The `MultiServerMCPClient` config shape this client accepts. */
export interface MandateMultiServerConfig {
  mcpServers: Record<string, MandateServerConnection>
  throwOnLoadError?: boolean
  prefixToolNameWithServerName?: boolean
  additionalToolNamePrefix?: string
  useStandardContentBlocks?: boolean
  outputHandling?: LoadMcpToolsOptions['outputHandling']
  defaultToolTimeout?: number
  onProgress?: LoadMcpToolsOptions['onProgress']
  afterToolCall?: LoadMcpToolsOptions['afterToolCall']
}

/** A validated server entry. */
export type ServerPlan =
  | { kind: 'http'; name: string; url: URL; resource: string; headers: Record<string, string> }
  | { kind: 'stdio'; name: string; resource: string; params: { command: string; args: string[]; env?: Record<string, string>; cwd?: string; stderr?: MandateStdioConnection['stderr'] } }

const HTTP_KEYS = new Set(['transport', 'type', 'url', 'headers', 'automaticSSEFallback'])
const STDIO_KEYS = new Set(['transport', 'type', 'command', 'args', 'env', 'cwd', 'encoding', 'stderr', 'resource'])
const TOP_KEYS = new Set(['mcpServers', 'throwOnLoadError', 'prefixToolNameWithServerName', 'additionalToolNamePrefix', 'useStandardContentBlocks', 'outputHandling', 'defaultToolTimeout', 'onProgress', 'afterToolCall'])
/** Headers the credential (or a session of someone else) travels in: never set by config. */
const RESERVED_HEADERS = new Set(['authorization', 'dpop', 'proxy-authorization', 'cookie'])
/** Why a key that `MultiServerMCPClient` knows is refused here. */
const REFUSED: Record<string, string> = {
  beforeToolCall: 'beforeToolCall is not supported: its headers fork a new MCP session per call and its args would change the call after its credential was bound',
  authProvider: 'authProvider is not supported: Mandate authorizes every tool call with its own credential',
  reconnect: 'reconnect is not supported by the Mandate client',
  restart: 'restart is not supported by the Mandate client',
  onConnectionError: 'onConnectionError is not supported: a server that cannot connect fails getTools()',
}

export function configError(message: string): MandateError {
  return new MandateError('CONFIG_INVALID', message)
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

function unknownKey(obj: Record<string, unknown>, allowed: Set<string>, where: string): void {
  for (const k of Object.keys(obj)) {
    if (allowed.has(k)) continue
    throw configError(Object.hasOwn(REFUSED, k) ? `${where}: ${REFUSED[k]}` : `${where}: unknown option "${k}"`)
  }
}

function stringRecord(v: unknown, what: string): Record<string, string> {
  if (v === undefined) return {}
  if (!isRecord(v)) throw configError(`${what} must be an object of strings`)
  const out: Record<string, string> = {}
  for (const [k, s] of Object.entries(v)) {
    if (typeof s !== 'string') throw configError(`${what}.${k} must be a string`)
    out[k] = s
  }
  return out
}

/** A URL credentials may go to: https, or plain http on loopback; no userinfo, query or fragment. */
function endpointUrl(raw: unknown, where: string): URL {
  if (typeof raw !== 'string') throw configError(`${where}: url must be a string`)
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw configError(`${where}: url is not a URL`)
  }
  if (!isSecureTransportUrl(url)) {
    throw configError(`${where}: url must be https (plain http only on loopback)`)
  }
  if (url.username || url.password || url.search || url.hash) throw configError(`${where}: url must have no credentials, query or fragment`)
  return url
}

function transportOf(c: Record<string, unknown>, where: string): 'http' | 'stdio' {
  const t = c.transport ?? c.type
  if (c.transport !== undefined && c.type !== undefined && c.transport !== c.type) throw configError(`${where}: transport and type disagree`)
  if (t === 'http' || t === 'stdio') return t
  if (t === 'sse') throw configError(`${where}: the SSE transport cannot carry a per-call credential; use Streamable HTTP ("http")`)
  if (t !== undefined) throw configError(`${where}: unsupported transport ${JSON.stringify(t)}`)
  if (typeof c.command === 'string') return 'stdio'
  if (typeof c.url === 'string') return 'http'
  throw configError(`${where}: neither url (http) nor command (stdio) is set`)
}

function httpPlan(name: string, c: Record<string, unknown>, where: string): ServerPlan {
  unknownKey(c, HTTP_KEYS, where)
  const url = endpointUrl(c.url, where)
  if (c.automaticSSEFallback !== undefined && typeof c.automaticSSEFallback !== 'boolean') throw configError(`${where}: automaticSSEFallback must be a boolean`)
  const headers = stringRecord(c.headers, `${where}.headers`)
  for (const h of Object.keys(headers)) {
    if (RESERVED_HEADERS.has(h.toLowerCase())) throw configError(`${where}: header "${h}" is set by Mandate for every tool call, not by config`)
  }
  // the guard's audience and the adapter's: what createContextCredentialTransport sends to
  return { kind: 'http', name, url, resource: canonicalUrl(url), headers }
}

function stdioPlan(name: string, c: Record<string, unknown>, where: string): ServerPlan {
  unknownKey(c, STDIO_KEYS, where)
  if (typeof c.command !== 'string' || c.command.length === 0) throw configError(`${where}: command must be a non-empty string`)
  const args = c.args ?? []
  if (!Array.isArray(args) || !args.every((a) => typeof a === 'string')) throw configError(`${where}: args must be an array of strings`)
  if (c.cwd !== undefined && typeof c.cwd !== 'string') throw configError(`${where}: cwd must be a string`)
  if (c.encoding !== undefined && c.encoding !== 'utf8' && c.encoding !== 'utf-8') throw configError(`${where}: only utf8 encoding is supported`)
  if (c.stderr !== undefined && !['overlapped', 'pipe', 'ignore', 'inherit'].includes(c.stderr as string)) throw configError(`${where}: stderr must be overlapped, pipe, ignore or inherit`)
  if (typeof c.resource !== 'string') throw configError(`${where}: a stdio server needs resource (its guard's audience, an https URI)`)
  // an https URI: the adapter's fetch only presents a credential to a URL its audience covers
  const resource = canonicalUrl(endpointUrl(c.resource, `${where}.resource`))
  if (resource !== c.resource) throw configError(`${where}: resource must be canonical (${resource})`)
  const env = c.env === undefined ? undefined : stringRecord(c.env, `${where}.env`)
  return {
    kind: 'stdio', name, resource,
    params: { command: c.command, args: [...(args as string[])], ...(env ? { env } : {}), ...(c.cwd ? { cwd: c.cwd as string } : {}), ...(c.stderr ? { stderr: c.stderr as MandateStdioConnection['stderr'] } : {}) },
  }
}

/** Validate a `MultiServerMCPClient`-shaped config; every server must be able to carry Mandate credentials. */
export function planServers(config: unknown): { servers: ServerPlan[]; load: LoadMcpToolsOptions } {
  if (!isRecord(config)) throw configError('config must be an object with mcpServers')
  for (const k of Object.keys(config)) {
    if (!TOP_KEYS.has(k)) throw configError(Object.hasOwn(REFUSED, k) ? (REFUSED[k] as string) : `unknown option "${k}"`)
  }
  if (!isRecord(config.mcpServers) || Object.keys(config.mcpServers).length === 0) throw configError('mcpServers must name at least one server')
  const servers: ServerPlan[] = []
  for (const [name, raw] of Object.entries(config.mcpServers)) {
    const where = `mcpServers.${name}`
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(name)) throw configError(`${where}: server names are 1-64 of A-Z a-z 0-9 _ -`)
    if (!isRecord(raw)) throw configError(`${where} must be an object`)
    servers.push(transportOf(raw, where) === 'http' ? httpPlan(name, raw, where) : stdioPlan(name, raw, where))
  }
  const bool = (k: string): boolean | undefined => {
    const v = config[k]
    if (v !== undefined && typeof v !== 'boolean') throw configError(`${k} must be a boolean`)
    return v as boolean | undefined
  }
  const load: LoadMcpToolsOptions = {
    throwOnLoadError: bool('throwOnLoadError') ?? true,
    prefixToolNameWithServerName: bool('prefixToolNameWithServerName') ?? false,
    useStandardContentBlocks: bool('useStandardContentBlocks') ?? false,
  }
  if (config.additionalToolNamePrefix !== undefined) {
    if (typeof config.additionalToolNamePrefix !== 'string') throw configError('additionalToolNamePrefix must be a string')
    load.additionalToolNamePrefix = config.additionalToolNamePrefix
  }
  if (config.defaultToolTimeout !== undefined) {
    if (!Number.isSafeInteger(config.defaultToolTimeout) || (config.defaultToolTimeout as number) <= 0) throw configError('defaultToolTimeout must be a positive whole number of ms')
    load.defaultToolTimeout = config.defaultToolTimeout as number
  }
  for (const k of ['onProgress', 'afterToolCall'] as const) {
    if (config[k] !== undefined && typeof config[k] !== 'function') throw configError(`${k} must be a function`)
  }
  if (config.outputHandling !== undefined) load.outputHandling = config.outputHandling as LoadMcpToolsOptions['outputHandling']
  if (config.onProgress) load.onProgress = config.onProgress as LoadMcpToolsOptions['onProgress']
  if (config.afterToolCall) load.afterToolCall = config.afterToolCall as LoadMcpToolsOptions['afterToolCall']
  return { servers, load }
}
