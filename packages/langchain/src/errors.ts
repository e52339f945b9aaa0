import { ToolMessage } from '@langchain/core/messages'
import { MandateError } from '@mandate/core'
import { isTerminalRefusal, mentionsSecret, scrubSecrets } from '@mandate/core/kernel'

const MAX_TEXT = 1000

/** The text the model reads when a call was refused: stable code and safe message only. */
export function refusalText(err: MandateError): string {
  return `Refused by Mandate (${err.code}): ${err.message}`
}

/** A refusal no retry within this run can fix (see `onTerminalRefusal`): the kernel marks them. */
export function isTerminal(err: unknown): err is MandateError {
  return isTerminalRefusal(err)
}

/** The text the model reads when a tool failed; any credential is scrubbed out. */
export function toolErrorText(err: unknown, secrets: readonly string[]): string {
  const raw = err instanceof Error ? `${err.name}: ${err.message}` : 'tool failed'
  return scrubSecrets(raw, secrets).slice(0, MAX_TEXT)
}

/** An error ToolMessage for a refusal or a tool failure. */
export function errorToolMessage(err: unknown, call: { id?: string | undefined; name: string }, secrets: readonly string[]): ToolMessage {
  // refusal messages are safe by contract; scrub and bound them anyway (one may quote a remote peer)
  const content = MandateError.is(err) ? scrubSecrets(refusalText(err), secrets).slice(0, MAX_TEXT) : toolErrorText(err, secrets)
  return new ToolMessage({
    content,
    tool_call_id: call.id ?? '',
    name: call.name,
    status: 'error',
    ...(MandateError.is(err) ? { additional_kwargs: { mandate_code: err.code } } : {}),
  })
}

/**
 * The error a guarded tool throws to its caller (LangGraph's `ToolNode` turns it into the text the
 * model reads). It passes through unchanged unless it mentions a credential anywhere (message,
 * stack, causes, `errors`, detail, own properties — see `mentionsSecret`): then a Mandate refusal
 * becomes a fresh MandateError with the same `code` and a scrubbed message, and any other error a
 * plain Error with a scrubbed `name: message`, both without the cause that carried the secret.
 */
export function callerSafeError(err: unknown, secrets: readonly string[]): unknown {
  if (!mentionsSecret(err, secrets)) return err
  if (MandateError.is(err)) return new MandateError(err.code, scrubSecrets(err.message, secrets).slice(0, MAX_TEXT))
  const text = err instanceof Error ? `${err.name}: ${err.message}` : 'the tool failed'
  return new Error(scrubSecrets(text, secrets).slice(0, MAX_TEXT))
}
