/**
 * Every character that is invisible or not a character, by Unicode property rather than a list:
 * controls, format characters (bidi, zero-width, U+061C, U+180E), line and paragraph separators,
 * default-ignorable code points (soft hyphen, fillers, variation selectors, tags), private use,
 * unassigned and lone surrogates. A name that is shown (a subject in the dashboard, audit and CLI)
 * and contains one does not read as what it is.
 */
export const INVISIBLE_OR_CONTROL = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Co}\p{Cn}\p{Cs}\p{Default_Ignorable_Code_Point}]/u

/**
 * Characters a log or trace viewer could be fooled by when text from a request reaches it: C0 and
 * C1 controls, DEL, line and paragraph separators, bidi marks, overrides and isolates. JSON
 * encoding escapes only the C0 controls, so the rest would be shown raw.
 */
// eslint-disable-next-line no-control-regex
export const UNSAFE_DISPLAY_CHARS = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g

/** `text` with each {@link UNSAFE_DISPLAY_CHARS} character as its `\uXXXX` escape (tab and line feed kept when asked). */
export function escapeUnsafeDisplay(text: string, keepLineBreaks = false): string {
  return text.replace(UNSAFE_DISPLAY_CHARS, (ch) => (keepLineBreaks && (ch === '\n' || ch === '\t') ? ch : `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`))
}
