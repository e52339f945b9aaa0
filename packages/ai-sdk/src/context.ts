import { AsyncLocalStorage } from 'node:async_hooks'
import { MandateError, type ApprovalClaim, type Ed25519Key } from '@mandate/core'

/**
 * What a tool sees about the call it is running for. It never contains the credential itself.
 * `verified: true`: a Guard at this side checked credential and proof before the tool ran;
 * `verified: false`: the credential goes to a remote side whose guard verifies it (fields as issued).
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
  /** Mandate id (`jti`) of the call credential. */
  readonly mandateId: string
  /** Expiry of the call credential, seconds since the epoch. */
  readonly expiresAt: number
  readonly approval?: Readonly<ApprovalClaim>
  readonly toolCallId?: string
}

/** Internal: the active call. Holds the credential; never exported from the package root. */
export interface ActiveCall {
  readonly context: CallContext
  readonly token: string
  readonly key: Ed25519Key
  readonly tool: string
  readonly arguments: unknown
  readonly issuer: string
  /** Set once the credential left the process (single use). */
  sent: boolean
  /** Why the adapter's own transport refused to send it. */
  refusal?: MandateError
  /** The resource's own refusal of the presented credential (401/403 with a Mandate code). */
  serverRefusal?: MandateError
}

const storage = new AsyncLocalStorage<ActiveCall>()

/** Run `fn` with `call` active. A guarded call cannot be opened inside another one. */
export function runInCallContext<T>(call: ActiveCall, fn: () => Promise<T>): Promise<T> {
  if (storage.getStore() !== undefined) {
    return Promise.reject(new MandateError('INVALID_REQUEST', 'a Mandate-guarded tool cannot be called from inside another guarded tool call'))
  }
  return storage.run(call, fn)
}

/** Internal: the active call, or undefined outside one. */
export function activeCall(): ActiveCall | undefined {
  return storage.getStore()
}

/**
 * The context of the guarded tool call being run (subject, agent, actor chain, task, approval).
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
