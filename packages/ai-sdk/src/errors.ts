import { MandateError, type MandateErrorCode } from '@mandate/core'
import { mentionsSecret, scrubSecrets as scrub } from '@mandate/core/kernel'
import type { StopCondition, ToolSet } from 'ai'

const MAX_TEXT = 1000

const terminal = new WeakSet<Error>()

/**
 * The error an `execute` throws, which the AI SDK turns into the `tool-error` the model reads (and
 * the callbacks, steps and telemetry receive). A Mandate refusal becomes a fresh MandateError with
 * the same `code`, a model-readable message with any credential scrubbed out, and no `cause` (its
 * chain may hold a peer's raw answer). A tool's own error passes through unchanged unless it
 * mentions a credential anywhere (message, stack, cause), in which case a scrubbed plain Error
 * replaces it.
 */
export function modelSafeError(err: unknown, secrets: readonly string[], isTerminal: boolean): Error {
  if (MandateError.is(err)) {
    const detail = err.detail && !mentionsSecret(err.detail, secrets) ? { detail: err.detail } : {}
    const safe = new MandateError(err.code, scrub(`Refused by Mandate (${err.code}): ${err.message}`, secrets).slice(0, MAX_TEXT), detail)
    if (isTerminal) terminal.add(safe)
    return safe
  }
  if (err instanceof Error && !mentionsSecret(err, secrets)) return err
  const text = err instanceof Error ? `${err.name}: ${err.message}` : 'the tool failed'
  return new Error(scrub(text, secrets).slice(0, MAX_TEXT))
}

/**
 * True for a refusal that no retry within this run can fix (the task or a mandate of its chain is
 * revoked or expired, the agent is disabled or unknown), as thrown by a tool guarded with
 * `onTerminalRefusal: 'stop'`.
 */
export function isTerminalRefusal(err: unknown): err is MandateError {
  return err instanceof Error && terminal.has(err)
}

/** The code of a Mandate refusal, or undefined. */
export function refusalCode(err: unknown): MandateErrorCode | undefined {
  return MandateError.is(err) ? err.code : undefined
}

/**
 * A `stopWhen` condition: stop the tool loop after a step in which a guarded tool got a terminal
 * refusal (see {@link isTerminalRefusal}; only with `onTerminalRefusal: 'stop'`). Most terminal
 * refusals already end the run before any tool runs (the approval hook throws); this one covers a
 * refusal found while the call runs (e.g. a local guard seeing the task revoked).
 *
 * @example
 * ```ts
 * await generateText({ model, tools, stopWhen: [stepCountIs(10), stopOnTerminalRefusal], prompt })
 * ```
 */
export const stopOnTerminalRefusal: StopCondition<ToolSet> = ({ steps }) => {
  const last = steps[steps.length - 1]
  return last ? last.content.some((p) => p.type === 'tool-error' && isTerminalRefusal(p.error)) : false
}
