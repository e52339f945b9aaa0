/**
 * Strict parameters of the token endpoint (RFC 6749 §3.2: a parameter sent without a value is
 * treated as omitted; a single-valued parameter sent more than once is refused).
 */
import {
  assertAudience, MandateError, parseBudget, parseScope, parseStrictJson, parseToolGrant,
  type Budget, type JsonValue, type ToolGrant,
} from '@mandate/core'

const REPEATABLE = new Set(['resource', 'audience'])
const MAX_PARAM = 64 * 1024

export class FormParams {
  readonly #values = new Map<string, string[]>()

  constructor(entries: Iterable<[string, string]>) {
    for (const [k, v] of entries) {
      if (k.length > 128 || v.length > MAX_PARAM) throw new MandateError('INVALID_REQUEST', 'request parameter is too large')
      const list = this.#values.get(k) ?? []
      list.push(v)
      this.#values.set(k, list)
      if (list.length > 1 && !REPEATABLE.has(k)) throw new MandateError('INVALID_REQUEST', `parameter "${k.slice(0, 40)}" must not be included more than once`)
      if (list.length > 16) throw new MandateError('INVALID_REQUEST', `too many "${k.slice(0, 40)}" parameters`)
    }
  }

  static from(params: FormParams | URLSearchParams | Record<string, string | string[] | undefined>): FormParams {
    if (params instanceof FormParams) return params
    if (params instanceof URLSearchParams) return new FormParams(params.entries())
    // in-process callers pass objects: the values must be what a form can carry (strings)
    if (typeof params !== 'object' || params === null || Array.isArray(params)) throw new MandateError('INVALID_REQUEST', 'token request parameters must be an object of strings')
    const entries: Array<[string, string]> = []
    for (const [k, v] of Object.entries(params)) {
      if (v === undefined) continue
      for (const x of Array.isArray(v) ? v : [v]) {
        if (typeof x !== 'string') throw new MandateError('INVALID_REQUEST', `parameter "${k.slice(0, 40)}" must be a string`)
        entries.push([k, x])
      }
    }
    return new FormParams(entries)
  }

  /** A single-valued parameter; undefined when absent or empty. */
  one(name: string): string | undefined {
    const v = this.#values.get(name)?.[0]
    return v === undefined || v === '' ? undefined : v
  }

  required(name: string): string {
    const v = this.one(name)
    if (v === undefined) throw new MandateError('INVALID_REQUEST', `parameter "${name}" is required`)
    return v
  }

  /** A repeatable parameter (empty values dropped). */
  many(name: string): string[] {
    return (this.#values.get(name) ?? []).filter((v) => v !== '')
  }
}

export function optInt(params: FormParams, name: string, min: number, max: number): number | undefined {
  const v = params.one(name)
  if (v === undefined) return undefined
  if (!/^(0|[1-9][0-9]{0,15})$/.test(v)) throw new MandateError('INVALID_REQUEST', `parameter "${name}" must be a non-negative integer`)
  return intParam(Number(v), name, min, max)
}

/** Bounds of the integer parameters, shared by the form parse and the in-process checks. */
export const LIMITS = {
  mandateExpiresIn: [1, 10 * 365 * 86_400],
  callExpiresIn: [1, 86_400],
  maxDepth: [0, 64],
  maxUses: [1, Number.MAX_SAFE_INTEGER],
  /** offline hops a grant may allow (core's MAX_OFFLINE_HOPS; the Authority's maxOfflineHops caps it further) */
  offlineHops: [1, 8],
  /** audience credential lifetime (the Authority caps it at maxAudienceLifetime) */
  audienceExpiresIn: [1, 86_400],
} as const satisfies Record<string, readonly [number, number]>

export function optJson(params: FormParams, name: string): JsonValue | undefined {
  const v = params.one(name)
  if (v === undefined) return undefined
  try {
    return parseStrictJson(v)
  } catch (err) {
    throw new MandateError('INVALID_REQUEST', `parameter "${name}" is not valid JSON`, { cause: err })
  }
}

export function optScopes(params: FormParams): string[] | undefined {
  const v = params.one('scope')
  return v === undefined ? undefined : parseScope(v)
}

export function optTools(params: FormParams): ToolGrant[] | undefined {
  const v = optJson(params, 'authorization_details')
  if (v === undefined) return undefined
  return toolList(v)
}

export function optBudget(params: FormParams): Budget | undefined {
  const v = optJson(params, 'budget')
  return v === undefined ? undefined : budgetParam(v)
}

export function resources(params: FormParams): string[] | undefined {
  const list = params.many('resource')
  const named = params.many('audience')
  if (named.length === 0) return list.length === 0 ? undefined : resourceList(list)
  // RFC 8693 §2.1 `audience` is the logical name of the target service. A mandate's audience is the
  // resource server's identifier, an absolute URI (RFC 8707 / RFC 9068 `aud`), so an `audience`
  // that is such a URI means exactly a `resource`; any other name cannot be mapped and is refused.
  const audiences = named.map((a) => {
    try {
      return assertAudience(a, 'audience')
    } catch (err) {
      throw new MandateError('NARROWING_AUDIENCE', 'audience must be the absolute URI that identifies the resource server (this Authority names targets by URI; use resource)', { cause: err })
    }
  })
  if (list.length === 0) return resourceList(audiences)
  const res = resourceList(list)
  if (audiences.length !== res.length || new Set(audiences).size !== audiences.length || audiences.some((a) => !res.includes(a))) {
    throw new MandateError('NARROWING_AUDIENCE', 'audience and resource name different targets; send one of them, or the same URIs in both')
  }
  return res
}

// ---- the same strictness for in-process callers (typed objects instead of form parameters)

/** Refuse members an in-process request object does not define (a typo must not be dropped silently). */
export function onlyMembers(v: object, allowed: readonly string[], what: string): void {
  for (const k of Object.keys(v)) if (!allowed.includes(k)) throw new MandateError('INVALID_REQUEST', `${what}: unknown member "${k.slice(0, 40)}"`)
}

/** An integer parameter given as a number, with the bounds its form parameter has. */
export function intParam(v: unknown, name: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) throw new MandateError('INVALID_REQUEST', `parameter "${name}" must be an integer between ${min} and ${max}`)
  return v
}

/** A string parameter with the size bound of a form parameter. */
export function strParam(v: unknown, name: string): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_PARAM) throw new MandateError('INVALID_REQUEST', `parameter "${name}" must be a non-empty string`)
  return v
}

/** Resources given as a list: what repeated `resource` parameters allow (1..16, distinct, absolute URIs). */
export function resourceList(v: unknown): string[] {
  if (!Array.isArray(v) || v.length === 0 || v.length > 16) throw new MandateError('NARROWING_AUDIENCE', 'audiences must list 1..16 resources')
  const list = v.map((r) => {
    try {
      return assertAudience(r, 'resource')
    } catch (err) {
      throw new MandateError('NARROWING_AUDIENCE', 'resource must be an absolute URI without fragment', { cause: err })
    }
  })
  if (new Set(list).size !== list.length) throw new MandateError('INVALID_REQUEST', 'duplicate resource')
  return list
}

/** Scopes given as a list: each one RFC 6749 scope token (no spaces), distinct, at most 64. */
export function scopeList(v: unknown): string[] {
  if (!Array.isArray(v)) throw new MandateError('SCOPE_MALFORMED', 'scopes must be an array of scope tokens')
  for (const s of v) if (typeof s !== 'string' || s === '' || s.includes(' ')) throw new MandateError('SCOPE_MALFORMED', 'each scope must be one scope token')
  return v.length === 0 ? [] : parseScope((v as string[]).join(' '))
}

/** Tool grants given as a list: what `authorization_details` allows (1..32 strict tool_access entries). */
export function toolList(v: unknown): ToolGrant[] {
  if (!Array.isArray(v) || v.length === 0 || v.length > 32) throw new MandateError('INVALID_REQUEST', 'authorization_details must list 1..32 tool_access entries')
  return v.map((d) => parseToolGrant(d))
}

/** A budget object: exactly `{ amount, unit }` (unknown members refused, as over HTTP). */
export function budgetParam(v: unknown): Budget {
  return parseBudget(v)
}
