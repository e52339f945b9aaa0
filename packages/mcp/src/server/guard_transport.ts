import { asMandateError, MandateError, type Guard, type JsonValue, type VerifiedCall } from '@mandate/core'
import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js'
import { ErrorCode, type JSONRPCMessage, type MessageExtraInfo, type RequestId } from '@modelcontextprotocol/sdk/types.js'
import { GUARD_CAPABILITY, type GuardCapability } from '../shared/guard_marker.js'
import { CREDENTIAL_META_KEY, presentedMandate, readMetaCredential } from '../shared/meta.js'
import { refusalResponse } from '../shared/rpc_errors.js'
import type { AuditSink } from './audit.js'
import { refusalAuditFor } from './refusal_audit.js'
import { enforceToolRequirements, type ToolRequirements } from './tool_requirements.js'
import { httpVerificationOf } from './verified_marks.js'

export interface GuardTransportContext {
  guard: Guard
  requirements(tool: string): ToolRequirements | undefined
  audit?: AuditSink | undefined
  /** Verified calls in flight, by JSON-RPC request id; read by the guarded tool wrapper. */
  inFlight: Map<RequestId, VerifiedCall>
}

type ToolCallRequest = { jsonrpc: '2.0'; id: RequestId; method: 'tools/call'; params?: { name?: unknown; arguments?: unknown; _meta?: Record<string, unknown> } }

function isToolCall(m: JSONRPCMessage): m is JSONRPCMessage & ToolCallRequest {
  return 'method' in m && m.method === 'tools/call' && 'id' in m
}

function isInitialize(m: JSONRPCMessage): m is JSONRPCMessage & { id: RequestId } {
  return 'method' in m && m.method === 'initialize' && 'id' in m
}

/** The initialize result with the guard capability added (a copy; the SDK's object is left alone). */
function withGuardCapability(message: JSONRPCMessage, marker: GuardCapability): JSONRPCMessage {
  const result = (message as { result?: unknown }).result
  if (typeof result !== 'object' || result === null) return message
  const r = result as { capabilities?: { experimental?: Record<string, unknown> } & Record<string, unknown> }
  const capabilities = r.capabilities ?? {}
  return {
    ...message,
    result: { ...r, capabilities: { ...capabilities, experimental: { ...(capabilities.experimental ?? {}), [GUARD_CAPABILITY]: { ...marker } } } },
  } as JSONRPCMessage
}

function isRequest(m: JSONRPCMessage): m is JSONRPCMessage & { id: RequestId; method: string } {
  return 'method' in m && 'id' in m
}

/** The `requestId` of a `notifications/cancelled`, if it is one. */
function cancelledRequestId(m: JSONRPCMessage): RequestId | undefined {
  if (!('method' in m) || m.method !== 'notifications/cancelled' || 'id' in m) return undefined
  const id = (m.params as { requestId?: unknown } | undefined)?.requestId
  return typeof id === 'string' || typeof id === 'number' ? id : undefined
}

/** JSON-RPC invalid request: a request whose id is the id of a tool call still running in this session. */
function busyIdResponse(id: RequestId): JSONRPCMessage {
  return {
    jsonrpc: '2.0',
    id,
    error: {
      code: ErrorCode.InvalidRequest,
      message: 'a tool call with this request id is still running',
      data: { mandate_code: 'INVALID_REQUEST', oauth_error: 'invalid_request', status: 400 },
    },
  }
}

function isResponse(m: JSONRPCMessage): m is JSONRPCMessage & { id: RequestId } {
  return 'id' in m && !('method' in m) && ('result' in m || 'error' in m)
}

/** Authorization or DPoP (any case): the headers that carry a call's credential and its proof. */
export function isCredentialHeader(name: string): boolean {
  const n = name.toLowerCase()
  return n === 'authorization' || n === 'dpop'
}

/**
 * The extra info handed on to the SDK, and from it to every handler's `extra.requestInfo`, without
 * the Authorization and DPoP headers: verified by now, they are of no use to a handler, and a tool
 * that logs or forwards its request headers would hand out the credential and its proof.
 */
function withoutCredentials(extra: MessageExtraInfo | undefined): MessageExtraInfo | undefined {
  const headers = extra?.requestInfo?.headers
  if (!extra || !headers || !Object.keys(headers).some(isCredentialHeader)) return extra
  const kept = Object.fromEntries(Object.entries(headers).filter(([k]) => !isCredentialHeader(k)))
  return { ...extra, requestInfo: { ...extra.requestInfo, headers: kept } }
}

/**
 * Server-side transport wrapper: every incoming `tools/call` is verified BEFORE the server sees it.
 * Over HTTP the call must have been verified by the HTTP layer (DPoP headers; see
 * `createMcpHttpHandler`); elsewhere (stdio, in-memory) the credential is read from
 * `params._meta["io.mandate/credential"]` and removed before the message is delivered. The message
 * delivered carries the guard's snapshot of the arguments (what was digested and checked), not the
 * object that arrived. Refusals are
 * answered here as JSON-RPC errors (`error.data.mandate_code`, `oauth_error`), so no handler runs.
 * Every admitted call is reported to the audit sink once, as `allowed`, with its outcome: when its
 * response is sent, or (outcome `error`) when it is cancelled or the transport closes first; its
 * request id is then free again. While a call is being verified or running, any other request with
 * its id is answered with a JSON-RPC invalid-request error and never reaches the server.
 *
 * The `initialize` result that leaves through this transport carries the guard capability
 * (`capabilities.experimental["io.mandate/guard"]`): it is added here, not when the server is built,
 * so a server advertises it exactly when its messages pass through verification.
 */
export class GuardedServerTransport implements Transport {
  readonly #inner: Transport
  readonly #ctx: GuardTransportContext
  /** Ids of `initialize` requests received and not yet answered (at most a few per session). */
  readonly #initializing = new Set<RequestId>()
  /** Ids of tool calls being verified (not yet in flight): reserved before the first await. */
  readonly #admitting = new Set<RequestId>()
  /**
   * Admitted calls of this transport not yet ended (also in `ctx.inFlight`, shared with the tool
   * wrapper): each is reported once, when its response is sent, when it is cancelled
   * (`notifications/cancelled`) or when the transport closes with it still running.
   */
  readonly #running = new Map<RequestId, VerifiedCall>()
  onclose?: (() => void) | undefined
  onerror?: ((error: Error) => void) | undefined
  onmessage?: (<T extends JSONRPCMessage>(message: T, extra?: MessageExtraInfo) => void) | undefined

  constructor(inner: Transport, ctx: GuardTransportContext) {
    this.#inner = inner
    this.#ctx = ctx
    // keep what the owner of the inner transport installed (e.g. the HTTP handler's session table)
    const ownClose = inner.onclose
    inner.onclose = () => {
      // calls still running when the transport closes never get a response: they end here
      for (const id of [...this.#running.keys()]) this.#finishLater(id)
      ownClose?.()
      this.onclose?.()
    }
    inner.onerror = (e) => this.onerror?.(e)
    inner.onmessage = (m, extra) => this.#receive(m, extra)
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

  close(): Promise<void> {
    return this.#inner.close()
  }

  async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    if (isResponse(message) && this.#initializing.delete(message.id) && 'result' in message) {
      const marker: GuardCapability = { verifies: 'call-credential', version: 1, resource: this.#ctx.guard.audience }
      return this.#inner.send(withGuardCapability(message, marker), options)
    }
    if (isResponse(message) && this.#running.has(message.id)) {
      const result = (message as { result?: unknown }).result
      const failed = 'error' in message || (typeof result === 'object' && result !== null && (result as { isError?: unknown }).isError === true)
      await this.#finish(message.id, failed ? 'error' : 'success')
    }
    return this.#inner.send(message, options)
  }

  /**
   * End an admitted call: remove it from the in-flight table and report it, exactly once (the first
   * of its response, its cancellation or the transport's close does it; the others find nothing).
   */
  async #finish(id: RequestId, outcome: 'success' | 'error'): Promise<void> {
    const call = this.#running.get(id)
    if (!call) return
    this.#running.delete(id)
    if (this.#ctx.inFlight.get(id) === call) this.#ctx.inFlight.delete(id)
    await this.#report({
      mandateId: call.mandateId,
      txn: call.task.id,
      tool: call.tool,
      audience: call.audience,
      argumentsDigest: call.argumentsDigest,
      decision: 'allowed',
      outcome,
      actorChain: [...call.actorChain],
      subject: call.subject,
      // the holder-signed hops of an offline chain, so that the Authority's audit shows them
      ...(call.offlineHops?.length ? { offlineHops: call.offlineHops.map((h) => ({ ...h, tools: [...h.tools] })) } : {}),
    })
  }

  /** {@link #finish} off the message path; a failing sink is surfaced through `onerror`. */
  #finishLater(id: RequestId): void {
    // CallReport's outcome is 'success' | 'error' (a core type): a call whose caller never got its
    // result (cancelled, or its transport closed first) did not succeed for the caller, so it is
    // recorded as 'error'; the record still says it was allowed and that its handler was started
    this.#finish(id, 'error').catch((e: unknown) => this.onerror?.(e instanceof Error ? e : new Error(String(e))))
  }

  async #report(report: Parameters<AuditSink>[0]): Promise<void> {
    if (!this.#ctx.audit) return
    try {
      await this.#ctx.audit(report)
    } catch (err) {
      // the call has been decided; a failing audit sink is surfaced, never silently dropped
      this.onerror?.(new MandateError('AUDIT_BROKEN', 'could not record the guarded call', { cause: err }))
    }
  }

  #receive(message: JSONRPCMessage, extra: MessageExtraInfo | undefined): void {
    if (!isToolCall(message)) {
      if (isRequest(message) && this.#busy(message.id)) {
        // a request reusing the id of a tool call being verified or running would take over the
        // SDK's id-to-reply mapping (the call's result would be lost): it never reaches the SDK
        void this.#inner.send(busyIdResponse(message.id), { relatedRequestId: message.id }).catch((e: unknown) => this.onerror?.(e instanceof Error ? e : new Error(String(e))))
        return
      }
      // bounded: the SDK answers each initialize; a peer that floods them gets errors, not state
      if (isInitialize(message) && this.#initializing.size < 16) this.#initializing.add(message.id)
      this.onmessage?.(message, withoutCredentials(extra))
      // the SDK sends no response for a cancelled request: the call ends here (its handler is
      // aborted), so it is reported now and its id is free again
      const cancelled = cancelledRequestId(message)
      if (cancelled !== undefined && this.#running.has(cancelled)) this.#finishLater(cancelled)
      return
    }
    this.#admit(message, extra).then(
      (admitted) => {
        if (admitted) this.onmessage?.(admitted, withoutCredentials(extra))
      },
      (err: unknown) => this.onerror?.(err instanceof Error ? err : new Error(String(err))),
    )
  }

  /** Whether `id` is the id of a tool call of this transport being verified or in flight. */
  #busy(id: RequestId): boolean {
    return this.#admitting.has(id) || this.#running.has(id)
  }

  async #admit(message: ToolCallRequest, extra: MessageExtraInfo | undefined): Promise<ToolCallRequest | undefined> {
    const params = message.params ?? {}
    const tool = typeof params.name === 'string' ? params.name : ''
    const args = params.arguments ?? {}
    const meta = readMetaCredential(params._meta)
    let verifiedArgs: JsonValue | undefined
    let verified: VerifiedCall | undefined
    let reserved = false
    try {
      // the id is taken before the first await: a second call with it, arriving while this one is
      // being verified, is refused (else both would run, under one in-flight entry and one audit record)
      if (this.#ctx.inFlight.has(message.id) || this.#busy(message.id)) {
        // a protocol error, answered as for any other request reusing the id (JSON-RPC -32600)
        await this.#inner.send(busyIdResponse(message.id), { relatedRequestId: message.id })
        return undefined
      }
      this.#admitting.add(message.id)
      reserved = true
      let call: VerifiedCall
      const http = httpVerificationOf(extra?.authInfo)
      if (http) {
        // verified by the HTTP layer for exactly this message (same JSON-RPC id and tool)
        if (http.requestId !== message.id || http.tool !== tool) throw new MandateError('ARGUMENTS_MISMATCH', 'the verified credential belongs to another message')
        call = http.call
      } else if (extra?.requestInfo) {
        throw new MandateError('PROOF_MISSING', 'HTTP tool calls must carry Authorization: DPoP and DPoP headers')
      } else {
        if (!meta) throw new MandateError('PROOF_MISSING', `a call credential is required in _meta["${CREDENTIAL_META_KEY}"]`)
        call = await this.#ctx.guard.verifyToolCall({ mandate: meta.mandate, proof: meta.proof, tool, arguments: args })
      }
      verified = call
      // the guard's snapshot of the arguments is what was digested and checked: the tool gets exactly it
      verifiedArgs = call.arguments
      if (verifiedArgs === undefined) throw new MandateError('ARGUMENTS_MISMATCH', 'the verified call carries no arguments snapshot')
      enforceToolRequirements(call, this.#ctx.requirements(tool), verifiedArgs)
      this.#ctx.inFlight.set(message.id, call)
      this.#running.set(message.id, call)
    } catch (err) {
      if (reserved) this.#admitting.delete(message.id)
      const refusal = asMandateError(err)
      // recorded off the request path (bounded queue), attributed only with what the guard verified
      if (this.#ctx.audit) {
        const credential = meta?.mandate ?? presentedMandate(params._meta)
        refusalAuditFor(this.#ctx.audit, this.#ctx.guard).record(refusal, { tool, arguments: args, credential, verified }, (e) => this.onerror?.(e))
      }
      await this.#inner.send(refusalResponse(message.id, refusal), { relatedRequestId: message.id })
      return undefined
    }
    this.#admitting.delete(message.id)
    // the handler never sees the credential, and runs on the verified snapshot
    const out: ToolCallRequest['params'] = { ...params, arguments: verifiedArgs }
    if (params._meta && Object.hasOwn(params._meta, CREDENTIAL_META_KEY)) {
      const { [CREDENTIAL_META_KEY]: _removed, ...rest } = params._meta
      out._meta = rest
    }
    return { ...message, params: out }
  }
}
