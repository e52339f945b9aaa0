import { AsyncLocalStorage } from 'node:async_hooks'
import { MandateError } from '../errors.js'
import type { Ed25519Key } from '../identity/key.js'
import type { ApprovalClaim } from '../mandate/claims.js'

/**
 * What a tool sees about the call it is running for. It never contains the credential itself.
 * `verified: true` means a core Guard at this (tool) side checked the credential and its proof
 * before the tool ran; `verified: false` means the credential is presented to a remote side (an
 * MCP server, an HTTP API) whose own guard verifies it, and these fields are as issued.
 */
export interface CallContext {
  readonly verified: boolean
  /** The user or system the work is for (`sub`). */
  readonly subject: string
  /** The agent making the call (current actor). */
  readonly actor: string
  /** Every actor, first delegate first, current actor last. */
  readonly actorChain: readonly string[]
  readonly task: { readonly id: string; readonly purpose?: string }
  /** The tool's name in the mandate. */
  readonly tool: string
  readonly audience: string
  readonly argumentsDigest: string
  readonly scopes: readonly string[]
  /**
   * Mandate id (`jti`) of the credential presented: the call credential, or in the cached mode the
   * audience credential (the same for every call it serves) or the last link of an offline chain.
   */
  readonly mandateId: string
  /** Ancestor mandate ids, root first. */
  readonly ancestors: readonly string[]
  /** Expiry of the credential presented, seconds since the epoch. */
  readonly expiresAt: number
  readonly approval?: Readonly<ApprovalClaim>
  readonly toolCallId?: string
}

/**
 * The active call, as transports see it: it holds the credential and the holder key. Adapters and
 * transports read it with {@link activeCall}; it is never handed to a tool or a model.
 */
export interface ActiveCall {
  readonly context: CallContext
  /** The credential presented (replaced once when a cached-mode call falls back to a call credential). */
  token: string
  readonly key: Ed25519Key
  readonly tool: string
  readonly arguments: unknown
  /** The Authority's issuer: the resource the credential goes to must advertise protection by it. */
  readonly issuer: string
  /**
   * Set once the credential left the process (call credentials are single use). A remote tool whose
   * call ends with this still false was not a guarded call: it fails with CREDENTIAL_NOT_PRESENTED.
   */
  sent: boolean
  /**
   * Why a transport refused to send the credential (e.g. RESOURCE_NOT_PROTECTED). The call fails with
   * this refusal even when the tool (an MCP client) wraps or swallows the error it got.
   */
  refusal?: MandateError
  /**
   * The resource's own refusal of the presented credential (a 401/403 carrying a Mandate code): the
   * call fails with it, typed, even when the tool (an MCP client) turns the answer into its own text.
   */
  serverRefusal?: MandateError
  /**
   * Cached mode only: obtain a call credential for exactly this call, for when the remote guard
   * refused the audience credential with `CALL_CREDENTIAL_REQUIRED` before running anything.
   */
  readonly perCallFallback?: () => Promise<string>
  /**
   * Register another secret this call sends (a transport's DPoP proof): the adapter then scrubs it
   * from what the model reads too (a resource echoing its request headers).
   */
  readonly addSecret?: (secret: string) => void
}

// One store per process, not per copy of this module: an app that ends up with two copies of
// @mandate/core (two adapters resolving different versions, CJS and ESM builds) must still have the
// transports of one adapter see the calls opened by another. The version in the key keeps copies whose
// ActiveCall shape differs apart.
const STORE_KEY = Symbol.for('@mandate/core.kernel.call-context.v1')

function sharedStore(): AsyncLocalStorage<ActiveCall> {
  const holder = globalThis as { [STORE_KEY]?: unknown }
  const existing = holder[STORE_KEY]
  if (existing === undefined) {
    const created = new AsyncLocalStorage<ActiveCall>()
    Object.defineProperty(globalThis, STORE_KEY, { value: created, enumerable: false, writable: false, configurable: false })
    return created
  }
  // something else sits at our key: refuse rather than hand credentials to it
  if (!(existing instanceof AsyncLocalStorage)) throw new MandateError('INTERNAL', 'the Mandate call-context store was replaced by a foreign object')
  return existing as AsyncLocalStorage<ActiveCall>
}

const storage = sharedStore()

/** Run `fn` with `call` as the active call. A call context cannot be opened inside another one. */
export function runInCallContext<T>(call: ActiveCall, fn: () => Promise<T>): Promise<T> {
  if (storage.getStore() !== undefined) {
    return Promise.reject(new MandateError('INVALID_REQUEST', 'a Mandate-guarded tool cannot be called from inside another guarded tool call'))
  }
  return storage.run(call, fn)
}

/** The active call (with its credential), or undefined outside one. For transports, never for tools. */
export function activeCall(): ActiveCall | undefined {
  return storage.getStore()
}

/**
 * The context of the guarded tool call being run: subject, acting agent, actor chain, task and approval.
 * @throws MandateError `INVALID_REQUEST` outside a guarded tool call.
 */
export function getCallContext(): CallContext {
  const call = storage.getStore()
  if (!call) throw new MandateError('INVALID_REQUEST', 'no Mandate call context: this code is not running inside a guarded tool call')
  return call.context
}

/** Like {@link getCallContext}, but undefined outside a guarded tool call. */
export function tryGetCallContext(): CallContext | undefined {
  return storage.getStore()?.context
}
