import { MandateError } from '@mandate/core'
import { mentionsSecret, scrubSecrets as scrub } from '@mandate/core/kernel'

const MAX_TEXT = 1000

const terminal = new WeakSet<Error>()

/**
 * The refusal the model (and the SDK's traces) may see: a fresh MandateError with the same `code`,
 * a model-readable message with any credential scrubbed out, and no `cause` (its chain may hold a
 * peer's raw answer).
 */
export function modelSafeRefusal(err: MandateError, secrets: readonly string[], isTerminal: boolean): MandateError {
  const detail = err.detail && !mentionsSecret(err.detail, secrets) ? { detail: err.detail } : {}
  const safe = new MandateError(err.code, scrub(err.message, secrets).slice(0, MAX_TEXT), detail)
  if (isTerminal) terminal.add(safe)
  return safe
}

/** What the model reads for a refusal: `Refused by Mandate (CODE): …`. */
export function refusalText(err: MandateError): string {
  return `Refused by Mandate (${err.code}): ${err.message}`.slice(0, MAX_TEXT)
}

/** An error that is not a Mandate refusal, as the model may see it (scrubbed when it mentions a secret). */
export function modelSafeError(err: unknown, secrets: readonly string[]): Error {
  if (err instanceof Error && !mentionsSecret(err, secrets)) return err
  const text = err instanceof Error ? `${err.name}: ${err.message}` : 'the tool failed'
  return new Error(scrub(text, secrets).slice(0, MAX_TEXT))
}

/**
 * True for a refusal that no retry within this run can fix (the task or a mandate of its chain is
 * revoked or expired, the agent is disabled or unknown), as thrown by a tool guarded with
 * `onTerminalRefusal: 'stop'` — the error `run()` rejects with, or the `error` of the SDK's
 * `ToolCallError` wrapping it.
 */
export function isTerminalRefusal(err: unknown): err is Error {
  if (!(err instanceof Error)) return false
  if (terminal.has(err)) return true
  const inner = (err as { error?: unknown }).error ?? (err as { cause?: unknown }).cause
  return inner instanceof Error && terminal.has(inner)
}

/** The terminal refusal inside `err` (itself, or the `error` of a `ToolCallError`), else undefined. */
export function terminalRefusalOf(err: unknown): MandateError | undefined {
  if (!isTerminalRefusal(err)) return undefined
  if (MandateError.is(err) && terminal.has(err)) return err
  const inner = (err as { error?: unknown }).error ?? (err as { cause?: unknown }).cause
  return MandateError.is(inner) ? inner : undefined
}
