import { MandateError } from '../errors.js'

/**
 * What a failed Authority call becomes. A MandateError passes through (the Authority or its client
 * already said why). Anything else — a raw `TypeError: fetch failed`, a timeout, a bug in a custom
 * client — is not a refusal anyone can act on, and its text may carry a stack or a URL with secrets:
 * it becomes `AUTHORITY_UNREACHABLE`, naming the issuer URL, with the original kept as `cause` only.
 */
export function authorityFailure(err: unknown, issuer: string, action: string): MandateError {
  if (MandateError.is(err)) {
    if (err.code !== 'AUTHORITY_UNREACHABLE') return err
    // the refusal text is all a model (or its developer reading the trace) gets: name the URL in it
    const url = typeof err.detail?.url === 'string' ? err.detail.url.slice(0, 200) : safeUrl(issuer)
    if (err.message.includes(url)) return err
    return new MandateError('AUTHORITY_UNREACHABLE', `${err.message} (${url}) while ${action}`, { cause: err, detail: { ...err.detail, url } })
  }
  return new MandateError('AUTHORITY_UNREACHABLE', `the Authority at ${safeUrl(issuer)} could not be reached while ${action}`, {
    cause: err,
    detail: { url: safeUrl(issuer) },
  })
}

/** Run one Authority call, mapping its failure through {@link authorityFailure}. */
export async function atAuthority<T>(issuer: string, action: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    throw authorityFailure(err, issuer, action)
  }
}

/** The issuer without userinfo, query or fragment, bounded: safe to show. */
function safeUrl(issuer: string): string {
  try {
    const u = new URL(issuer)
    return `${u.origin}${u.pathname === '/' ? '' : u.pathname}`.slice(0, 200)
  } catch {
    return 'the configured issuer'
  }
}
