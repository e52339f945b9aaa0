import { createProof, MandateError, snapshotArguments, type Ed25519Key } from '@mandate/core'
import { activeCall } from '@mandate/core/kernel'
import { createMandateFetch } from '@mandate/langchain'
import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js'
import type { JSONRPCMessage, MessageExtraInfo, RequestId } from '@modelcontextprotocol/sdk/types.js'
import { GUARD_CAPABILITY, readGuardCapability } from '../shared/guard_marker.js'
import { CREDENTIAL_META_KEY, type MetaCredential } from '../shared/meta.js'
import { RPC_UNAUTHORIZED } from '../shared/rpc_errors.js'

export interface ContextMetaOptions {
  /** The server guard's audience: the LangChain adapter's audience for this server's tools. */
  resource: string
  /** The Authority's issuer (the adapter's credentials must come from it). */
  issuer: string
  /** The holder's key, the one the adapter's middleware uses: signs the `_meta` proof of each call. */
  key: Ed25519Key
}

type ToolCall = JSONRPCMessage & { id: RequestId; method: 'tools/call'; params: { name: string; arguments?: unknown; _meta?: Record<string, unknown> } }

/** A tools/call waiting for its answer, which is held back until the adapter has seen it. */
interface Waiting {
  resolve(m: JSONRPCMessage): void
  reject(e: Error): void
}

const isToolCall = (m: JSONRPCMessage): m is ToolCall => 'method' in m && m.method === 'tools/call' && 'id' in m

/** The id of a response (result or error), or undefined for requests and notifications. */
function responseId(m: JSONRPCMessage): RequestId | undefined {
  return !('method' in m) && 'id' in m ? (m.id as RequestId) : undefined
}

/**
 * A stdio (or in-memory) client transport whose every `tools/call` carries the credential that
 * `@mandate/langchain` obtained for the tool call being run, in `params._meta["io.mandate/credential"]`
 * with a proof bound to the resource, the tool and the argument digest.
 *
 * The adapter hands its credential out only through `createMandateFetch`, so each call goes through
 * one: its "request" to the resource URI is this transport sending the `_meta` call over stdio. That
 * keeps the adapter's rules (single use, the call's own audience only, refused outside a guarded
 * call) and its bookkeeping: the credential counts as presented, and a refusal from the server's
 * guard comes back to the adapter as the typed refusal (the answer is held until it has been read).
 *
 * Credentials go only to a server whose `initialize` result advertises a Mandate guard for exactly
 * this resource (`RESOURCE_NOT_PROTECTED` / `AUDIENCE_MISMATCH` otherwise; nothing is sent).
 */
export class ContextMetaTransport implements Transport {
  readonly #inner: Transport
  readonly #resource: string
  readonly #issuer: string
  readonly #key: Ed25519Key
  readonly #waiting = new Map<RequestId, Waiting>()
  #initializeId: RequestId | undefined
  #advertised: string | undefined | null = undefined
  onclose?: (() => void) | undefined
  onerror?: ((error: Error) => void) | undefined
  onmessage?: (<T extends JSONRPCMessage>(message: T, extra?: MessageExtraInfo) => void) | undefined

  constructor(inner: Transport, options: ContextMetaOptions) {
    this.#inner = inner
    this.#resource = options.resource
    this.#issuer = options.issuer
    this.#key = options.key
    inner.onclose = () => {
      this.#failWaiting(new MandateError('INVALID_RESPONSE', 'the MCP server closed before answering the tool call'))
      this.onclose?.()
    }
    inner.onerror = (e) => this.onerror?.(e)
    inner.onmessage = (m, extra) => {
      this.#observe(m)
      const id = responseId(m)
      const waiting = id === undefined ? undefined : this.#waiting.get(id)
      if (waiting && id !== undefined) {
        this.#waiting.delete(id)
        waiting.resolve(m)
        return
      }
      this.onmessage?.(m, extra)
    }
  }

  get sessionId(): string | undefined {
    return this.#inner.sessionId
  }

  setProtocolVersion(version: string): void {
    this.#inner.setProtocolVersion?.(version)
  }

  start(): Promise<void> {
    return this.#inner.start()
  }

  async close(): Promise<void> {
    this.#failWaiting(new MandateError('INVALID_REQUEST', 'the MCP client was closed'))
    await this.#inner.close()
  }

  async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    if ('method' in message && message.method === 'initialize' && 'id' in message) {
      this.#initializeId = message.id
      this.#advertised = undefined
    }
    if (!isToolCall(message)) return this.#inner.send(message, options)
    if (typeof message.params?.name !== 'string') throw new MandateError('INVALID_REQUEST', 'tools/call without a tool name')
    // one plain copy: what the credential binds, what is proven and what is sent cannot differ
    const args = snapshotArguments(message.params.arguments ?? {})
    const held: { answer?: JSONRPCMessage } = {}
    // per call: the "fetch" the adapter's credential goes through is this call's stdio request
    const present = createMandateFetch({
      fetch: (_url, init) => this.#present(message, args, init, options, held),
      discoveryFetch: (url) => this.#metadata(url),
    })
    const res = await present(this.#resource, { method: 'POST' })
    await res.body?.cancel().catch(() => undefined)
    // only now, with the adapter's bookkeeping done, does the MCP client see the answer
    if (held.answer) this.onmessage?.(held.answer)
  }

  /** Send the call with the credential the adapter attached; resolve with the server's answer as an HTTP-like response. */
  async #present(message: ToolCall, args: unknown, init: RequestInit | undefined, options: TransportSendOptions | undefined, held: { answer?: JSONRPCMessage }): Promise<Response> {
    const auth = /^DPoP (\S+)$/i.exec(new Headers(init?.headers).get('authorization') ?? '')
    const token = auth?.[1]
    if (!token) throw new MandateError('PROOF_MISSING', 'no call credential for this tool call: it must run inside a Mandate-guarded tool call')
    // the resource check below already required this; checked again where the credential leaves
    this.#assertServerVerifies()
    const proof = createProof(this.#key, { accessToken: token, audience: this.#resource, tool: message.params.name, arguments: args })
    // this proof, not the adapter's HTTP one, is what goes out: a server echoing it must find it
    // scrubbed from what the model reads, like the credential itself
    activeCall()?.addSecret?.(proof)
    const credential: MetaCredential = { mandate: token, proof }
    const out = { ...message, params: { ...message.params, arguments: args, _meta: { ...(message.params._meta ?? {}), [CREDENTIAL_META_KEY]: credential } } }
    const answered = new Promise<JSONRPCMessage>((resolve, reject) => this.#waiting.set(message.id, { resolve, reject }))
    try {
      await this.#inner.send(out as JSONRPCMessage, options)
    } catch (err) {
      this.#waiting.delete(message.id)
      throw err
    }
    const answer = await answered
    held.answer = answer
    return responseFor(answer)
  }

  /**
   * The adapter's resource check reads RFC 9728 metadata before it hands out a credential; a stdio
   * server has none. Its equivalent is the guard capability of the server's `initialize` result:
   * the check is answered from it (for every call: each call has its own adapter fetch), so a server
   * that advertises no guard, or one for another resource, gets no credential and the adapter
   * records the refusal (`RESOURCE_NOT_PROTECTED`) as the call's.
   */
  async #metadata(url: string | URL | Request): Promise<Response> {
    const href = url instanceof Request ? url.url : String(url)
    const resource = new URL(this.#resource)
    const expected = new URL(`/.well-known/oauth-protected-resource${resource.pathname === '/' ? '' : resource.pathname.replace(/\/$/, '')}`, resource.origin).href
    if (href !== expected || this.#advertised === undefined || this.#advertised === null) return new Response('not found', { status: 404 })
    // an advertised guard for another resource reads as metadata for that resource: refused as such
    return Response.json({ resource: this.#advertised, authorization_servers: [this.#issuer] })
  }

  #observe(m: JSONRPCMessage): void {
    if (this.#initializeId === undefined || responseId(m) !== this.#initializeId) return
    this.#initializeId = undefined
    const result = (m as { result?: unknown }).result
    const marker = typeof result === 'object' && result !== null ? readGuardCapability((result as { capabilities?: unknown }).capabilities) : undefined
    this.#advertised = marker ? marker.resource : null
  }

  #assertServerVerifies(): void {
    if (this.#advertised === this.#resource) return
    if (typeof this.#advertised === 'string') {
      throw new MandateError('AUDIENCE_MISMATCH', 'the server verifies credentials for another resource; no credential was sent', { detail: { resource: this.#resource } })
    }
    throw new MandateError(
      'RESOURCE_NOT_PROTECTED',
      this.#advertised === null
        ? `the server does not advertise Mandate protection (no "${GUARD_CAPABILITY}" capability in its initialize result), so no credential was sent`
        : 'the server has not been initialized through this transport; no credential was sent',
      { detail: { resource: this.#resource } },
    )
  }

  #failWaiting(err: Error): void {
    for (const w of this.#waiting.values()) w.reject(err)
    this.#waiting.clear()
  }
}

/**
 * The server's answer as the adapter's fetch reads it: a guard's refusal (a JSON-RPC error with a
 * `mandate_code`) as a 401/403 carrying that code, anything else (results, tool errors) as a 200.
 */
function responseFor(answer: JSONRPCMessage): Response {
  const error = (answer as { error?: { code?: unknown; message?: unknown; data?: { mandate_code?: unknown } } }).error
  const code = error?.data?.mandate_code
  if (typeof code !== 'string') return new Response(null, { status: 200 })
  const status = error?.code === RPC_UNAUTHORIZED ? 401 : 403
  const message = typeof error?.message === 'string' ? error.message : 'refused'
  return Response.json({ error: { code: error?.code, message, data: { mandate_code: code } } }, { status })
}
