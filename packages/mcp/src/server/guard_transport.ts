import { argumentsDigest, asMandateError, MandateError, type Guard, type VerifiedCall } from '@mandate/core'
import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js'
import type { JSONRPCMessage, MessageExtraInfo, RequestId } from '@modelcontextprotocol/sdk/types.js'
import { CREDENTIAL_META_KEY, presentedMandate, readMetaCredential } from '../shared/meta.js'
import { refusalResponse } from '../shared/rpc_errors.js'
import { refusalReport, type AuditSink } from './audit.js'
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

function isResponse(m: JSONRPCMessage): m is JSONRPCMessage & { id: RequestId } {
  return 'id' in m && !('method' in m) && ('result' in m || 'error' in m)
}

/**
 * Server-side transport wrapper: every incoming `tools/call` is verified BEFORE the server sees it.
 * Over HTTP the call must have been verified by the HTTP layer (DPoP headers; see
 * `createMcpHttpHandler`); elsewhere (stdio, in-memory) the credential is read from
 * `params._meta["io.mandate/credential"]` and removed before the message is delivered. Refusals are
 * answered here as JSON-RPC errors (`error.data.mandate_code`, `oauth_error`), so no handler runs.
 * Responses to verified calls are reported to the audit sink with their outcome.
 */
export class GuardedServerTransport implements Transport {
  readonly #inner: Transport
  readonly #ctx: GuardTransportContext
  onclose?: (() => void) | undefined
  onerror?: ((error: Error) => void) | undefined
  onmessage?: (<T extends JSONRPCMessage>(message: T, extra?: MessageExtraInfo) => void) | undefined

  constructor(inner: Transport, ctx: GuardTransportContext) {
    this.#inner = inner
    this.#ctx = ctx
    inner.onclose = () => this.onclose?.()
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
    if (isResponse(message)) {
      const call = this.#ctx.inFlight.get(message.id)
      if (call) {
        this.#ctx.inFlight.delete(message.id)
        const result = (message as { result?: unknown }).result
        const failed = 'error' in message || (typeof result === 'object' && result !== null && (result as { isError?: unknown }).isError === true)
        await this.#report({
          mandateId: call.mandateId,
          txn: call.task.id,
          tool: call.tool,
          audience: call.audience,
          argumentsDigest: call.argumentsDigest,
          decision: 'allowed',
          outcome: failed ? 'error' : 'success',
          actorChain: call.actorChain,
          subject: call.subject,
        })
      }
    }
    return this.#inner.send(message, options)
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
      this.onmessage?.(message, extra)
      return
    }
    this.#admit(message, extra).then(
      (admitted) => {
        if (admitted) this.onmessage?.(admitted, extra)
      },
      (err: unknown) => this.onerror?.(err instanceof Error ? err : new Error(String(err))),
    )
  }

  async #admit(message: ToolCallRequest, extra: MessageExtraInfo | undefined): Promise<ToolCallRequest | undefined> {
    const params = message.params ?? {}
    const tool = typeof params.name === 'string' ? params.name : ''
    const args = params.arguments ?? {}
    const meta = readMetaCredential(params._meta)
    try {
      if (this.#ctx.inFlight.has(message.id)) throw new MandateError('INVALID_REQUEST', 'a call with this request id is already running')
      let call: VerifiedCall
      const http = httpVerificationOf(extra?.authInfo)
      if (http) {
        // verified by the HTTP layer for exactly this message
        if (http.requestId !== message.id || http.tool !== tool || argumentsDigest(args) !== http.call.argumentsDigest) {
          throw new MandateError('ARGUMENTS_MISMATCH', 'the verified credential belongs to another message')
        }
        call = http.call
      } else if (extra?.requestInfo) {
        throw new MandateError('PROOF_MISSING', 'HTTP tool calls must carry Authorization: DPoP and DPoP headers')
      } else {
        if (!meta) throw new MandateError('PROOF_MISSING', `a call credential is required in _meta["${CREDENTIAL_META_KEY}"]`)
        call = await this.#ctx.guard.verifyToolCall({ mandate: meta.mandate, proof: meta.proof, tool, arguments: args })
      }
      enforceToolRequirements(call, this.#ctx.requirements(tool), args)
      this.#ctx.inFlight.set(message.id, call)
    } catch (err) {
      const refusal = asMandateError(err)
      await this.#report(refusalReport(refusal, { tool, arguments: args, audience: this.#ctx.guard.audience, credential: meta?.mandate ?? presentedMandate(params._meta) }))
      await this.#inner.send(refusalResponse(message.id, refusal), { relatedRequestId: message.id })
      return undefined
    }
    // the handler never sees the credential
    if (params._meta && Object.hasOwn(params._meta, CREDENTIAL_META_KEY)) {
      const { [CREDENTIAL_META_KEY]: _removed, ...rest } = params._meta
      return { ...message, params: { ...params, _meta: rest } }
    }
    return message
  }
}
