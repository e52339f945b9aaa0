import { MandateError, parseScope } from '@mandate/core'

/** Longest challenge header read; a real one is a few hundred bytes. */
const MAX_CHALLENGE_CHARS = 8192

/**
 * The auth-params of a `WWW-Authenticate` header (RFC 9110 §11.6.1: `token=token` or
 * `token="quoted-string"`), names lowercased, the first value of a name kept. Only what a client
 * needs to read (`error`, `scope`, `resource_metadata`); the scheme is not interpreted.
 */
export function challengeParams(header: string | null | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  if (typeof header !== 'string') return out
  const text = header.slice(0, MAX_CHALLENGE_CHARS)
  const param = /(?:^|[\s,])([A-Za-z0-9!#$%&'*+.^_`|~-]+)[ \t]*=[ \t]*(?:"((?:[^"\\]|\\.)*)"|([A-Za-z0-9!#$%&'*+.^_`|~/:-]+))/g
  for (let m = param.exec(text); m !== null; m = param.exec(text)) {
    const name = (m[1] as string).toLowerCase()
    if (name in out) continue
    out[name] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : (m[3] as string)
  }
  return out
}

/**
 * The scopes a step-up asks for after `refusal`, or undefined when none applies: the refusal is not a
 * `403 insufficient_scope` that names the scopes it requires, the named scope is malformed, or asking
 * again could add nothing (the challenged scopes were all asked for already).
 *
 * `requested` are the scopes the refused credential was asked with; undefined means none were named,
 * so it carried every scope the mandate grants and the step-up asks for exactly the challenged ones
 * (the Authority then says whether the mandate grants them). Otherwise it asks for the union
 * (MCP authorization: previously requested plus newly challenged).
 */
export function stepUpScopes(refusal: MandateError, requested: readonly string[] | undefined): string[] | undefined {
  if (refusal.code !== 'INSUFFICIENT_SCOPE' || refusal.detail?.status !== 403) return undefined
  const raw = refusal.detail.scope
  if (typeof raw !== 'string') return undefined
  let challenged: string[]
  try {
    challenged = parseScope(raw)
  } catch {
    return undefined
  }
  if (challenged.length === 0) return undefined
  if (requested === undefined) return challenged
  const union = [...requested]
  for (const s of challenged) if (!union.includes(s)) union.push(s)
  return union.length > requested.length ? union : undefined
}

/**
 * What the caller sees when the Authority will not issue the step-up credential: a scope the
 * mandate does not grant (`NARROWING_SCOPE`) is the call's `INSUFFICIENT_SCOPE`, naming the scopes
 * the server requires (`detail.step_up: 'refused'`, the Authority's answer as `cause`). Anything else
 * (an approval required, a policy denial, an unreachable Authority) passes through as is.
 */
export function stepUpRefused(err: unknown, refusal: MandateError): unknown {
  if (!MandateError.is(err) || (err.code !== 'NARROWING_SCOPE' && err.code !== 'SCOPE_MALFORMED')) return err
  const scope = typeof refusal.detail?.scope === 'string' ? refusal.detail.scope : ''
  return new MandateError('INSUFFICIENT_SCOPE', `the server requires scope "${scope.slice(0, 200)}", which the mandate does not grant`, {
    detail: { scope, source: 'resource', status: 403, step_up: 'refused' },
    cause: err,
  })
}
