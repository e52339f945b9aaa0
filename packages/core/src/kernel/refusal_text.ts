/**
 * The text of a refusal that came from elsewhere (an Authority's or a resource's
 * `error_description`), made fit to show: a server may echo the request's own credential back,
 * and cutting such a text to length first would leave a token prefix (its header and most of its
 * claims) that no scrubber recognises as a token any more.
 */

// a JWS or JWT in compact form, whole or cut short: a base64url JSON object ("eyJ…"), then up to
// two more segments and any offline-chain links
const COMPACT_TOKEN = /eyJ[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]*){0,2}(?:~[A-Za-z0-9_.-]*)*/g
// a run of token characters (base64url, dots, `~`, standard base64) ending at the cut
const TOKEN_RUN_AT_END = /[A-Za-z0-9_.~+/=-]+$/
const TOKEN_CHAR = /[A-Za-z0-9_.~+/=-]/

/**
 * `text` with anything shaped like a compact token replaced by `[token]`, then cut to `max`
 * characters; a cut that falls inside a run of token characters drops the whole run, so no part
 * of an opaque credential is left at the end.
 */
export function refusalText(text: string, max = 300): string {
  const clean = text.replace(COMPACT_TOKEN, '[token]')
  if (clean.length <= max) return clean
  let cut = clean.slice(0, max)
  if (TOKEN_CHAR.test(clean.charAt(max))) cut = cut.replace(TOKEN_RUN_AT_END, '')
  return `${cut}…`
}
