import { MandateError, type MandateErrorCode } from '../errors.js'

/**
 * Refusal codes after which no call of this run can succeed, when the Authority or the local guard
 * answers them: an adapter's `onTerminalRefusal: 'stop'` ends the run on them. Only codes that speak
 * about the task or the agent itself and that nobody else can cause: a revoked or expired task or
 * chain, a disabled or unknown agent.
 *
 * Not among them: `INVALID_CLIENT` (it also answers failures an outsider can provoke — a
 * client-assertion single-use store filled by strangers, a clock skew — so stopping on it would let a
 * stranger end every run); `AUTHORITY_UNREACHABLE` (often transient); and a remote server's own
 * refusal of one credential (a fresh one may pass).
 */
export const TERMINAL_REFUSALS: ReadonlySet<MandateErrorCode> = new Set<MandateErrorCode>(['REVOKED', 'TOKEN_EXPIRED', 'AGENT_DISABLED', 'AGENT_UNKNOWN'])

// Only refusals the kernel itself raised or received from the Authority / the local guard are
// terminal: a tool that throws MandateError('REVOKED') of its own accord must not stop a run.
const terminal = new WeakSet<object>()

/** Mark a refusal from the Authority or the local guard as terminal when its code is. Returns `err`. */
export function markTerminal(err: unknown): unknown {
  if (MandateError.is(err) && TERMINAL_REFUSALS.has(err.code)) terminal.add(err)
  return err
}

/** Was `err` raised by a kernel call path as a terminal refusal (see {@link TERMINAL_REFUSALS})? */
export function isTerminalRefusal(err: unknown): err is MandateError {
  return typeof err === 'object' && err !== null && terminal.has(err)
}
