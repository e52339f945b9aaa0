/**
 * Characters a log or trace viewer could be fooled by when text from a request reaches it: C0 and
 * C1 controls, DEL, line and paragraph separators, bidi marks, overrides and isolates. JSON
 * encoding escapes only the C0 controls, so the rest would be shown raw.
 */
// eslint-disable-next-line no-control-regex
export const UNSAFE_DISPLAY_CHARS = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g
