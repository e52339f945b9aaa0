import { MandateError } from '@mandate/core'

/** Longest free-text reason an audit record keeps (approval decisions, revocations, agent changes). */
export const MAX_REASON_LENGTH = 512

// Controls other than tab and line feed, format characters (bidi overrides and isolates, zero-width,
// U+061C), line and paragraph separators, lone surrogates, default-ignorable code points (fillers
// such as U+3164, U+034F, invisible vowels such as U+17B5; emoji variation selectors stay) and the
// blank Braille pattern: in a recorded reason they would make the audit log, the dashboard or a
// terminal show a sentence other than the one stored.
const UNSAFE_REASON = /[\p{Cf}\p{Zl}\p{Zp}\p{Cs}\u2800]|(?![\uFE0E\uFE0F])\p{Default_Ignorable_Code_Point}|[^\P{Cc}\t\n]/u
// the same for one-line text (a task purpose): no control at all; the zero-width joiner of emoji
// sequences stays, as the variation selectors do
const UNSAFE_LINE = /(?!\u200D)[\p{Cf}\p{Zl}\p{Zp}\p{Cs}\p{Cc}\u2800]|(?![\uFE0E\uFE0F\u200D])\p{Default_Ignorable_Code_Point}/u

/** Does one-line text shown to people (a task purpose) hold control, bidi or invisible characters? */
export function hasUnsafeLineText(text: string): boolean {
  return UNSAFE_LINE.test(text)
}

/**
 * An optional free-text reason as every API that records one takes it: undefined, or a string of at
 * most `max` characters without control (except tab and line feed), bidi or invisible format
 * characters. INVALID_REQUEST otherwise. The dashboard's forms apply the same rule.
 */
export function checkReasonText(reason: unknown, max = MAX_REASON_LENGTH): string | undefined {
  if (reason === undefined) return undefined
  if (typeof reason !== 'string' || reason.length > max) throw new MandateError('INVALID_REQUEST', `reason must be a string of at most ${max} characters`)
  if (UNSAFE_REASON.test(reason)) throw new MandateError('INVALID_REQUEST', 'reason must not hold control characters (other than tab and line feed), bidi controls or invisible format characters')
  return reason
}
