import { assertAudience, createProof, MandateError, type Ed25519Key } from '@mandate/core'
import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js'
import type { JSONRPCMessage, MessageExtraInfo } from '@modelcontextprotocol/sdk/types.js'
import { CREDENTIAL_META_KEY, type MetaCredential } from '../shared/meta.js'
import { createCallCredentialSource, type CallCredentialOptions } from './credentials.js'

export interface MetaCredentialOptions extends CallCredentialOptions {
  /** The server's canonical resource URI (its guard's audience); stdio servers have no URL to discover. */
  resource: string
  /** The holder's key: signs the proof of every call. */
  key: Ed25519Key
}

function isToolCall(m: JSONRPCMessage): m is JSONRPCMessage & { id: string | number; method: 'tools/call'; params: { name: string; arguments?: Record<string, unknown>; _meta?: Record<string, unknown> } } {
  return 'method' in m && m.method === 'tools/call' && 'id' in m
}

/**
 * Wrap a client transport without HTTP headers (stdio, in-memory) so every outgoing `tools/call`
 * carries its own call credential and a proof bound to the resource, the tool and the argument
 * digest in `params._meta["io.mandate/credential"]`. Everything else passes through untouched.
 */
export class MetaCredentialTransport implements Transport {
  readonly #inner: Transport
  readonly #credentials: ReturnType<typeof createCallCredentialSource>
  readonly #resource: string
  readonly #key: Ed25519Key
  onclose?: (() => void) | undefined
  onerror?: ((error: Error) => void) | undefined
  onmessage?: (<T extends JSONRPCMessage>(message: T, extra?: MessageExtraInfo) => void) | undefined

  constructor(inner: Transport, options: MetaCredentialOptions) {
    this.#inner = inner
    this.#resource = assertAudience(options.resource, 'resource')
    if (!options.key || typeof options.key.sign !== 'function') throw new TypeError('key must be an Ed25519Key')
    this.#key = options.key
    this.#credentials = createCallCredentialSource(options)
    inner.onclose = () => this.onclose?.()
    inner.onerror = (e) => this.onerror?.(e)
    inner.onmessage = (m, extra) => this.onmessage?.(m, extra)
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
    if (!isToolCall(message)) return this.#inner.send(message, options)
    const params = message.params
    if (typeof params?.name !== 'string') throw new MandateError('INVALID_REQUEST', 'tools/call without a tool name')
    const args = params.arguments ?? {}
    const mandate = await this.#credentials({ audience: this.#resource, tool: params.name, arguments: args })
    const proof = createProof(this.#key, { accessToken: mandate, audience: this.#resource, tool: params.name, arguments: args })
    const credential: MetaCredential = { mandate, proof }
    const out = { ...message, params: { ...params, _meta: { ...(params._meta ?? {}), [CREDENTIAL_META_KEY]: credential } } }
    return this.#inner.send(out, options)
  }
}

/** Wrap a stdio or in-memory client transport so each tool call carries its own credential in `_meta`. */
export function withMetaCredentials(transport: Transport, options: MetaCredentialOptions): MetaCredentialTransport {
  return new MetaCredentialTransport(transport, options)
}
