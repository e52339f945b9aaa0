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
    const entries: Array<[string, string]> = []
    for (const [k, v] of Object.entries(params)) {
      if (v === undefined) continue
      for (const x of Array.isArray(v) ? v : [v]) entries.push([k, x])
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
  const n = Number(v)
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new MandateError('INVALID_REQUEST', `parameter "${name}" must be between ${min} and ${max}`)
  return n
}

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
  if (!Array.isArray(v) || v.length === 0 || v.length > 32) throw new MandateError('INVALID_REQUEST', 'authorization_details must be a non-empty JSON array')
  return v.map((d) => parseToolGrant(d))
}

export function optBudget(params: FormParams): Budget | undefined {
  const v = optJson(params, 'budget')
  return v === undefined ? undefined : parseBudget(v)
}

export function resources(params: FormParams): string[] | undefined {
  const list = params.many('resource')
  if (list.length === 0) return undefined
  if (new Set(list).size !== list.length) throw new MandateError('INVALID_REQUEST', 'duplicate resource')
  return list.map((r) => {
    try {
      return assertAudience(r, 'resource')
    } catch (err) {
      throw new MandateError('NARROWING_AUDIENCE', 'resource must be an absolute URI without fragment', { cause: err })
    }
  })
}
