import { MandateError } from '@mandate/core'

/**
 * @internal The default `onError` of `createMcpHttpHandler`: audit failures on stderr, one line per
 * 10 s, never a token (the cause's text is the Authority's `error_description` or a local error;
 * control characters are dropped, so none can hide a token from the mask, then anything shaped
 * like a JWS is cut out).
 */
export function stderrAuditFailures(now: () => number = Date.now): (e: Error) => void {
  let lastAt = -Infinity
  let skipped = 0
  return (e) => {
    if (!MandateError.is(e) || e.code !== 'AUDIT_BROKEN') return
    if (now() - lastAt < 10_000) {
      skipped++
      return
    }
    lastAt = now()
    const cause = (e as { cause?: unknown }).cause
    const why = cause instanceof Error ? `: ${MandateError.is(cause) ? `${cause.code} ` : ''}${cause.message}` : ''
    const more = skipped ? ` (${skipped} more since the last line)` : ''
    skipped = 0
    // one line, whatever a peer put in its error text (no forged log lines, no terminal escapes)
    const line = `[mandate/mcp] AUDIT_BROKEN ${e.message}${why}${more}`
      .replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, '')
      .replace(/eyJ[\w-]*\.[\w-]*\.?[\w-]*/g, '[token]')
      .slice(0, 500)
    process.stderr.write(`${line}\n`)
  }
}
