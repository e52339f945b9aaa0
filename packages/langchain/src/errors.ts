import { ToolMessage } from '@langchain/core/messages'
import { MandateError } from '@mandate/core'
import { TERMINAL_REFUSALS } from './options.js'

const MAX_TEXT = 1000

/** Replace every secret in `text` (credentials, mandates) with a placeholder. */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text
  for (const s of secrets) if (s.length >= 16) out = out.split(s).join('[credential]')
  return out
}

/** The text the model reads when a call was refused: stable code and safe message only. */
export function refusalText(err: MandateError): string {
  return `Refused by Mandate (${err.code}): ${err.message}`
}

const terminal = new WeakSet<MandateError>()

/**
 * Mark a refusal from the Authority or the adapter itself (before the tool ran) as terminal when its
 * code says no retry in this run can succeed. Only those: a remote server's own refusal of one call
 * credential (e.g. expired in transit) is not about the task, and a fresh credential may pass.
 */
export function markTerminal(err: unknown): unknown {
  if (MandateError.is(err) && TERMINAL_REFUSALS.has(err.code)) terminal.add(err)
  return err
}

/** A refusal no retry within this run can fix (see `onTerminalRefusal`). */
export function isTerminal(err: unknown): err is MandateError {
  return MandateError.is(err) && terminal.has(err)
}

/** The text the model reads when a tool failed; any credential is scrubbed out. */
export function toolErrorText(err: unknown, secrets: readonly string[]): string {
  const raw = err instanceof Error ? `${err.name}: ${err.message}` : 'tool failed'
  return redact(raw, secrets).slice(0, MAX_TEXT)
}

/** An error ToolMessage for a refusal or a tool failure. */
export function errorToolMessage(err: unknown, call: { id?: string | undefined; name: string }, secrets: readonly string[]): ToolMessage {
  // refusal messages are safe by contract; scrub and bound them anyway (one may quote a remote peer)
  const content = MandateError.is(err) ? redact(refusalText(err), secrets).slice(0, MAX_TEXT) : toolErrorText(err, secrets)
  return new ToolMessage({
    content,
    tool_call_id: call.id ?? '',
    name: call.name,
    status: 'error',
    ...(MandateError.is(err) ? { additional_kwargs: { mandate_code: err.code } } : {}),
  })
}
