import { asMandateError, assertAudience, createProof, MandateError, snapshotArguments, type Ed25519Key } from '@mandate/core'
import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js'
import type { JSONRPCMessage, MessageExtraInfo, RequestId } from '@modelcontextprotocol/sdk/types.js'
import { readGuardCapability, GUARD_CAPABILITY, type GuardCapability } from '../shared/guard_marker.js'
import { CREDENTIAL_META_KEY, type MetaCredential } from '../shared/meta.js'
import { refusalResponse } from '../shared/rpc_errors.js'
import { createCredentialProvider, type CallCredentialOptions, type CredentialProvider } from './credentials.js'
import { stepUpRefused, stepUpScopes } from './step_up.js'

export interface MetaCredentialOptions extends CallCredentialOptions {
  /** The server's canonical resource URI (its guard's audience); stdio servers have no URL to discover. */
  resource: string
  /** The holder's key: signs the proof of every call. */
  key: Ed25519Key
  /**
   * Send call credentials even to a server whose `initialize` result does not advertise the
   * `experimental["io.mandate/guard"]` capability (default false). A credential names the subject,
   * the task purpose and the actor chain; without the marker nothing says the server verifies it
   * rather than just reading it. Only for guarded servers that cannot advertise the capability.
   */
  sendCredentialsToUnadvertisedServer?: boolean
}

/** Calls awaiting an answer that are remembered for one retry (cached mode, scope step-up). */
const MAX_PENDING = 1024

/** A sent call remembered until its answer: it may be resent once, with a fresh credential. */
interface PendingCall {
  message: ToolCall
  args: unknown
  options: TransportSendOptions | undefined
  /** Sent with the cached audience credential (a `CALL_CREDENTIAL_REQUIRED` answer is retried per call). */
  cached: boolean
}

type ToolCall = JSONRPCMessage & { id: RequestId; method: 'tools/call'; params: { name: string; arguments?: unknown; _meta?: Record<string, unknown> } }

function isToolCall(m: JSONRPCMessage): m is ToolCall {
  return 'method' in m && m.method === 'tools/call' && 'id' in m
}

/** What the client knows about the server's guard: not yet initialized, advertised, or not advertised. */
type ServerGuard = { state: 'unknown' } | { state: 'advertised'; marker: GuardCapability } | { state: 'absent' }

/**
 * Wrap a client transport without HTTP headers (stdio, in-memory) so every outgoing `tools/call`
 * carries its own call credential and a proof bound to the resource, the tool and the argument
 * digest in `params._meta["io.mandate/credential"]`. Everything else passes through untouched.
 *
 * Credentials go only to a server that said, in its `initialize` result, that it verifies them (the
 * `experimental["io.mandate/guard"]` capability a `GuardedMcpServer` advertises) for this
 * `resource`. Otherwise the call is refused before any credential is requested:
 * `RESOURCE_NOT_PROTECTED` (no marker; see `sendCredentialsToUnadvertisedServer`) or
 * `AUDIENCE_MISMATCH` (the server's guard is for another resource).
 *
 * The arguments are snapshot once (`snapshotArguments`): the credential, the proof and the message
 * sent are all made from that one plain copy.
 *
 * Scope step-up (`stepUp`, default on): an `INSUFFICIENT_SCOPE` refusal that names the scopes the
 * tool requires (`error.data.scope`) is answered once with a fresh credential for the configured
 * `scopes` plus those, and the call resent with the same request id; the Authority refusing to widen
 * is delivered as `INSUFFICIENT_SCOPE`, and the resent call's answer is final.
 */
export class MetaCredentialTransport implements Transport {
  readonly #inner: Transport
  readonly #credentials: CredentialProvider
  /**
   * Tool calls sent and not yet answered, by request id, each resent at most once: in cached mode a
   * `CALL_CREDENTIAL_REQUIRED` answer (the server ran nothing) with a call credential; with scope
   * step-up an `INSUFFICIENT_SCOPE` answer naming the required scopes with a credential for them.
   * A resent call is not remembered again, so its answer is the caller's.
   */
  readonly #pending = new Map<RequestId, PendingCall>()
  readonly #resource: string
  readonly #key: Ed25519Key
  readonly #unadvertisedOk: boolean
  #initializeId: RequestId | undefined
  #server: ServerGuard = { state: 'unknown' }
  onclose?: (() => void) | undefined
  onerror?: ((error: Error) => void) | undefined
  onmessage?: (<T extends JSONRPCMessage>(message: T, extra?: MessageExtraInfo) => void) | undefined

  constructor(inner: Transport, options: MetaCredentialOptions) {
    this.#inner = inner
    this.#resource = assertAudience(options.resource, 'resource')
    if (!options.key || typeof options.key.sign !== 'function') throw new MandateError('CONFIG_INVALID', 'key must be an Ed25519Key')
    const optOut = options.sendCredentialsToUnadvertisedServer
    if (optOut !== undefined && typeof optOut !== 'boolean') throw new MandateError('CONFIG_INVALID', 'sendCredentialsToUnadvertisedServer must be a boolean')
    this.#unadvertisedOk = optOut === true
    this.#key = options.key
    this.#credentials = createCredentialProvider(options)
    inner.onclose = () => {
      this.#pending.clear()
      this.onclose?.()
    }
    inner.onerror = (e) => this.onerror?.(e)
    inner.onmessage = (m, extra) => {
      this.#observe(m)
      if (this.#retried(m)) return
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

  close(): Promise<void> {
    return this.#inner.close()
  }

  async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    if ('method' in message && message.method === 'initialize' && 'id' in message) {
      this.#initializeId = message.id
      this.#server = { state: 'unknown' }
    }
    if (!isToolCall(message)) return this.#inner.send(message, options)
    const params = message.params
    if (typeof params?.name !== 'string') throw new MandateError('INVALID_REQUEST', 'tools/call without a tool name')
    this.#assertServerVerifies()
    // one plain copy: what is digested, proven and sent cannot differ (getters, toJSON, proxies)
    const args = snapshotArguments(params.arguments ?? {})
    const { token, cached } = await this.#credentials.credential({ audience: this.#resource, tool: params.name, arguments: args })
    if ((cached || this.#credentials.stepUp) && this.#pending.size < MAX_PENDING) this.#pending.set(message.id, { message, args, options, cached })
    return this.#sendWith(message, args, token, options)
  }

  /** Send the call with `mandate` and a fresh proof bound to the resource, the tool and the argument digest. */
  #sendWith(message: ToolCall, args: unknown, mandate: string, options: TransportSendOptions | undefined): Promise<void> {
    const params = message.params
    const proof = createProof(this.#key, { accessToken: mandate, audience: this.#resource, tool: params.name, arguments: args })
    const credential: MetaCredential = { mandate, proof }
    const out = { ...message, params: { ...params, arguments: args, _meta: { ...(params._meta ?? {}), [CREDENTIAL_META_KEY]: credential } } }
    return this.#inner.send(out as JSONRPCMessage, options)
  }

  /**
   * The answer to a remembered call: a refusal that one retry can meet is swallowed and the call
   * resent once (true): `INSUFFICIENT_SCOPE` naming the scopes the tool requires, with a fresh
   * credential for them (scope step-up), or, for the cached credential, `CALL_CREDENTIAL_REQUIRED`
   * with a call credential from the Authority. Anything else is delivered as is (false).
   */
  #retried(m: JSONRPCMessage): boolean {
    if (!('id' in m) || 'method' in m) return false
    const id = m.id as RequestId | undefined
    if (id === undefined || !this.#pending.has(id)) return false
    const pending = this.#pending.get(id)
    this.#pending.delete(id)
    const error = (m as { error?: { message?: unknown; data?: { mandate_code?: unknown; scope?: unknown; status?: unknown } } }).error
    const code = error?.data?.mandate_code
    if (!pending || typeof code !== 'string') return false
    const request = { audience: this.#resource, tool: pending.message.params.name, arguments: pending.args }
    if (code === 'INSUFFICIENT_SCOPE' && this.#credentials.stepUp && typeof error?.data?.scope === 'string') {
      const refusal = new MandateError('INSUFFICIENT_SCOPE', typeof error.message === 'string' ? error.message.slice(0, 300) : 'insufficient scope', {
        detail: { scope: error.data.scope.slice(0, 2048), source: 'resource', status: error.data.status === 403 ? 403 : 0 },
      })
      const scopes = stepUpScopes(refusal, this.#credentials.scopes)
      if (scopes) {
        this.#credentials.stepUpCredential({ ...request, scopes }).then(
          (token) => this.#sendWith(pending.message, pending.args, token, pending.options),
          (err: unknown) => {
            throw stepUpRefused(err, refusal)
          },
        ).catch((err: unknown) => {
          this.onmessage?.(refusalResponse(pending.message.id, asMandateError(err)))
        })
        return true
      }
    }
    if (!pending.cached) return false
    if (code !== 'CALL_CREDENTIAL_REQUIRED') {
      this.#credentials.refused(request, code)
      return false
    }
    this.#credentials.perCall(request).then(
      (token) => this.#sendWith(pending.message, pending.args, token, pending.options),
    ).catch((err: unknown) => {
      // the caller waits for an answer to its request id: give it the refusal
      this.onmessage?.(refusalResponse(pending.message.id, asMandateError(err)))
    })
    return true
  }

  /** Learn from the initialize result whether the server verifies call credentials, and for which resource. */
  #observe(m: JSONRPCMessage): void {
    if (this.#initializeId === undefined || !('id' in m) || m.id !== this.#initializeId || 'method' in m) return
    this.#initializeId = undefined
    const result = (m as { result?: unknown }).result
    const marker = typeof result === 'object' && result !== null ? readGuardCapability((result as { capabilities?: unknown }).capabilities) : undefined
    this.#server = marker ? { state: 'advertised', marker } : { state: 'absent' }
  }

  #assertServerVerifies(): void {
    const s = this.#server
    if (s.state === 'advertised') {
      if (s.marker.resource !== this.#resource) {
        throw new MandateError('AUDIENCE_MISMATCH', 'the server verifies credentials for another resource; no credential was sent', { detail: { resource: this.#resource } })
      }
      return
    }
    if (this.#unadvertisedOk) return
    throw new MandateError(
      'RESOURCE_NOT_PROTECTED',
      s.state === 'absent'
        ? `the server does not advertise Mandate protection (no "${GUARD_CAPABILITY}" capability in its initialize result), so no credential was sent`
        : 'the server has not been initialized through this transport, so nothing says it verifies credentials; no credential was sent',
      { detail: { resource: this.#resource } },
    )
  }
}

/**
 * Wrap a stdio or in-memory client transport so each tool call carries its own credential in
 * `_meta`, sent only to a server that advertises the Mandate guard capability. See
 * {@link MetaCredentialTransport}.
 */
export function withMetaCredentials(transport: Transport, options: MetaCredentialOptions): MetaCredentialTransport {
  return new MetaCredentialTransport(transport, options)
}
