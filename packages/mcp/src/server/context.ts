import { AsyncLocalStorage } from 'node:async_hooks'
import { MandateError, type VerifiedCall } from '@mandate/core'

const current = new AsyncLocalStorage<VerifiedCall>()

/** Run `fn` with `call` as the verified call of the current async context (used by the guarded tool wrapper). */
export function runWithVerifiedCall<T>(call: VerifiedCall, fn: () => T): T {
  if (current.getStore() !== undefined) throw new MandateError('INTERNAL', 'a guarded tool call cannot run inside another one')
  return current.run(call, fn)
}

/**
 * The verified call the current tool handler runs under: subject, actor, actor chain, task,
 * approval, scopes. Throws outside a guarded tool call (fail closed, never undefined by accident).
 *
 * @throws MandateError `PROOF_MISSING` when called outside a guarded tool call.
 */
export function getVerifiedCall(): VerifiedCall {
  const call = current.getStore()
  if (!call) throw new MandateError('PROOF_MISSING', 'no verified call in this context')
  return call
}

/** Like {@link getVerifiedCall}, but undefined outside a guarded tool call. */
export function findVerifiedCall(): VerifiedCall | undefined {
  return current.getStore()
}
