import { createProof, isMandateErrorCode, MandateError, readBounded, type MandateErrorCode } from '@mandate/core'
import { activeCall, audienceProblem, configError, refusalText, type ActiveCall } from '@mandate/core/kernel'
import { createContextCredentialFetch, type AttachTarget } from '@mandate/mcp'
import { getAllMcpTools, MCPServerStreamableHttp, type FunctionTool, type MCPServer } from '@openai/agents'

/** The SDK's options of `MCPServerStreamableHttp`. */
type MCPServerStreamableHttpOptions = ConstructorParameters<typeof MCPServerStreamableHttp>[0]
import type { MandateToolsOptions } from './options.js'
import { mandateTools } from './wrap_tools.js'

/** A fetch-compatible function. */
export type FetchFunction = (input: string | URL | Request, init?: RequestInit) => Promise<Response>

/** Options of {@link mandateMcpServer}: the SDK's options for a Streamable HTTP server, with Mandate's. */
export interface MandateMcpServerOptions extends Omit<MCPServerStreamableHttpOptions, 'fetch' | 'authProvider'> {
  /** The Authority's issuer: the server's RFC 9728 metadata must name it before a credential goes to it. */
  issuer: string
  /** The fetch the transport sends through (default: the global fetch). */
  fetch?: FetchFunction
}

/**
 * An `MCPServerStreamableHttp` for a Mandate-guarded MCP server: every `tools/call` carries the
 * credential of the guarded tool call being run (`Authorization: DPoP <credential>` and a fresh DPoP
 * proof bound to the tool and arguments); `initialize`, `tools/list`, notifications and the session's
 * GET / DELETE go out without one. Built on `@mandate/mcp`'s `createContextCredentialFetch`, given
 * to the SDK as the transport's `fetch`.
 *
 * Its tools must be guarded too: get them with {@link mandateMcpTools} (which lists them as `remote`,
 * with `url` as their audience) and give them to the agent as `tools` — not the server as
 * `mcpServers`, whose tools the SDK would call with no Mandate credential (those calls are refused:
 * a `tools/call` outside a guarded call is never sent, `PROOF_MISSING`).
 *
 * Fail closed: a credential goes only to `url` (never through a redirect), only after the server's
 * RFC 9728 metadata names `url` and the Authority (else `RESOURCE_NOT_PROTECTED`), and only once.
 * A server's 401/403 becomes the call's typed refusal (its `mandate_code`), which the model reads.
 *
 * @throws MandateError `CONFIG_INVALID` for a URL that is not a canonical http(s) resource URI, a
 * missing issuer, or an `authProvider` (Mandate owns the `Authorization` header).
 */
export function mandateMcpServer(options: MandateMcpServerOptions): MCPServerStreamableHttp {
  if (typeof options !== 'object' || options === null) throw configError('mandateMcpServer options are required')
  const { issuer, fetch: base, ...rest } = options
  const url = options.url
  if (typeof url !== 'string') throw configError('the MCP server url must be a string')
  const problem = audienceProblem(url)
  if (problem) throw configError(`the MCP server url ${problem}`)
  if (!/^https?:/.test(url)) throw configError('the MCP server url must be an http(s) URL (Streamable HTTP)')
  if (typeof issuer !== 'string' || issuer.length === 0) throw configError('issuer is required (the Authority the server must name)')
  if (base !== undefined && typeof base !== 'function') throw configError('fetch must be a function')
  if ((options as { authProvider?: unknown }).authProvider !== undefined) throw configError('authProvider cannot be combined with Mandate: the Authorization header carries the call credential')
  const contextFetch = createContextCredentialFetch({ serverUrl: url, issuer, attach: attachCallCredential, ...(base ? { fetch: base } : {}) })
  const fetch = async (input: string | URL, init?: RequestInit): Promise<Response> => {
    try {
      return await contextFetch(input, init)
    } catch (err) {
      // the MCP client turns this into its own error text: keep the typed refusal for the call
      const call = activeCall()
      if (call && !call.sent && call.refusal === undefined && MandateError.is(err)) call.refusal = err
      throw err
    }
  }
  const server = new MCPServerStreamableHttp({ ...rest, fetch })
  mandateServers.set(server, url)
  return server
}

/** Servers built by {@link mandateMcpServer}, with their URL (the audience of their tools). */
const mandateServers = new WeakMap<object, string>()

/** The attach hook: the credential of the guarded call being run, for its own tools/call only. */
function attachCallCredential(next: AttachTarget) {
  return async (input: string | URL, init?: RequestInit): Promise<Response> => {
    const call = activeCall()
    if (!call) throw new MandateError('PROOF_MISSING', 'an MCP tools/call outside a Mandate-guarded tool call has no credential: it is not sent')
    const name = toolsCallName(init?.body)
    if (name !== call.tool) {
      throw refuse(call, new MandateError('TOOL_NOT_ALLOWED', `the guarded call is for tool "${call.tool.slice(0, 128)}", not "${String(name).slice(0, 128)}": its credential is not sent`))
    }
    if (call.sent) throw new MandateError('TOKEN_REPLAYED', 'the call credential was already sent; call credentials are single use')
    const url = new URL(String(input))
    const headers = new Headers(init?.headers)
    const send = (): Promise<Response> => {
      // a fresh proof for every request: bound to method, URL, credential, tool and argument digest
      headers.set('authorization', `DPoP ${call.token}`)
      const proof = createProof(call.key, { method: 'POST', url: url.href, accessToken: call.token, tool: call.tool, arguments: call.arguments })
      call.addSecret?.(proof)
      headers.set('dpop', proof)
      call.sent = true
      return next(input, { ...init, method: 'POST', headers })
    }
    let res = await send()
    // cached mode: the server wants an Authority-minted call credential for this tool. Its guard
    // refused before running anything, so the same request goes once more with a call credential.
    if (call.perCallFallback && typeof init?.body === 'string' && (await demandsCallCredential(res))) {
      await res.body?.cancel().catch(() => undefined)
      call.token = await call.perCallFallback()
      res = await send()
    }
    if (res.status === 401 || res.status === 403) call.serverRefusal = await serverRefusal(res)
    return res
  }
}

function toolsCallName(body: unknown): string | undefined {
  if (typeof body !== 'string') return undefined
  try {
    const msg = JSON.parse(body) as { method?: unknown; params?: { name?: unknown } }
    return msg?.method === 'tools/call' && typeof msg.params?.name === 'string' ? msg.params.name : undefined
  } catch {
    return undefined
  }
}

function refuse(call: ActiveCall, err: MandateError): MandateError {
  if (!call.sent && call.refusal === undefined) call.refusal = err
  return err
}

/** Does a refusal say `CALL_CREDENTIAL_REQUIRED` (a guard's JSON error body, read bounded from a clone)? */
async function demandsCallCredential(res: Response): Promise<boolean> {
  if (res.status !== 403 && res.status !== 401) return false
  try {
    const text = await readBounded(res.clone(), res.url || 'about:blank', { maxBytes: 8192, timeoutMs: 5_000, invalid: 'INVALID_RESPONSE', what: 'refusal' })
    const body = JSON.parse(text) as { mandate_code?: unknown; error?: { data?: { mandate_code?: unknown } } }
    return body.mandate_code === 'CALL_CREDENTIAL_REQUIRED' || body.error?.data?.mandate_code === 'CALL_CREDENTIAL_REQUIRED'
  } catch {
    return false
  }
}

/** The server's refusal, from a bounded read of a clone of its answer (the MCP client reads the original). */
async function serverRefusal(res: Response): Promise<MandateError> {
  let body: Record<string, unknown> = {}
  try {
    const text = await readBounded(res.clone(), res.url || 'about:blank', { maxBytes: 8192, timeoutMs: 5_000, invalid: 'INVALID_RESPONSE', what: 'refusal' })
    const parsed: unknown = JSON.parse(text)
    if (typeof parsed === 'object' && parsed !== null) body = parsed as Record<string, unknown>
  } catch {
    // not JSON or unreadable: the status still says the call was refused
  }
  const code: MandateErrorCode = isMandateErrorCode(body.mandate_code) ? body.mandate_code : body.error === 'insufficient_scope' ? 'INSUFFICIENT_SCOPE' : 'ACCESS_DENIED'
  const description = typeof body.error_description === 'string' ? refusalText(body.error_description) : `the MCP server refused the call (HTTP ${res.status})`
  return new MandateError(code, description, { detail: { source: 'resource', status: res.status } })
}

/** Options of {@link mandateMcpTools}: those of `mandateTools`, the audience and `remote` being the server's. */
export type MandateMcpToolsOptions = Omit<MandateToolsOptions, 'audience' | 'remote' | 'guard'>

/**
 * The tools of a connected MCP server as guarded function tools for an agent's `tools`: listed
 * with the SDK's `getAllMcpTools`, then wrapped by `mandateTools` as `remote` tools whose audience
 * is the server's URL. Pair with {@link mandateMcpServer}, whose transport presents each call's
 * credential; a tool whose call never presented one fails with `CREDENTIAL_NOT_PRESENTED`.
 *
 * @example
 * ```ts
 * const server = mandateMcpServer({ url, issuer: authority.issuer, name: 'ledger' })
 * await server.connect()
 * const agent = new Agent({ name: 'billing', tools: await mandateMcpTools(server, { client, key, mandate }), model })
 * ```
 */
export async function mandateMcpTools(server: MCPServer, options: MandateMcpToolsOptions): Promise<FunctionTool[]> {
  const url = typeof server === 'object' && server !== null ? mandateServers.get(server) : undefined
  // a server on another transport would call its tools with no credential: refused here
  if (url === undefined) throw configError('server must be an MCP server made by mandateMcpServer (its transport presents the call credentials)')
  const tools = (await getAllMcpTools({ mcpServers: [server], convertSchemasToStrict: false })).filter((t): t is FunctionTool => t.type === 'function')
  return mandateTools(tools, { ...options, audience: url, remote: true })
}
