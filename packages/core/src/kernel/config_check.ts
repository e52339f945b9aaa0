import { MandateError } from '../errors.js'
import { isLoopbackHost } from '../http/transport_url.js'

/** Why `audience` is not a canonical resource URI, or undefined when it is one. */
export function audienceProblem(audience: string): string | undefined {
  if (audience.length === 0 || audience.length > 2048) return 'must be a non-empty URI of at most 2048 characters'
  if (/^urn:/i.test(audience)) {
    return /^urn:[a-z0-9][a-z0-9-]{0,31}:[\x21-\x7e]+$/.test(audience) && !audience.includes('#') ? undefined : 'is not a valid urn (lowercase "urn:", no fragment)'
  }
  let u: URL
  try {
    u = new URL(audience)
  } catch {
    return 'is not an absolute URI (e.g. "https://billing.example.com/api")'
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return 'must be an https or http URI, or a urn'
  if (u.username || u.password) return 'must not carry credentials'
  if (audience.includes('#')) return 'must not have a fragment'
  if (audience.includes('?')) return 'must not have a query'
  // guards compare audiences byte for byte: anything URL parsing would rewrite is a second spelling
  const canonical = `${u.origin}${u.pathname}`
  if (audience !== canonical && `${audience}/` !== canonical) return `is not in canonical form (did you mean "${canonical}"?)`
  return undefined
}

/** Would a credential for `audience` travel over plain HTTP off this machine? */
export function isCleartextRemote(audience: string): boolean {
  if (!audience.startsWith('http:')) return false
  try {
    return !isLoopbackHost(new URL(audience).hostname)
  } catch {
    return true
  }
}

/** An audience as error text may show it: no userinfo, query or fragment (they may hold secrets), bounded. */
export function displayAudience(audience: string): string {
  return audience.replace(/[?#].*$/s, '').replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, '$1').slice(0, 200)
}

/** A configuration mistake: found when the adapter is built, never sent to the model as a refusal. */
export function configError(message: string, tool?: string): MandateError {
  return new MandateError('CONFIG_INVALID', message, tool === undefined ? {} : { detail: { tool: tool.slice(0, 128) } })
}

/** Refuse a list of tool names with a duplicate (the audience, guard and credential would be ambiguous). */
export function assertUniqueNames(names: readonly string[]): void {
  const seen = new Set<string>()
  for (const n of names) {
    if (seen.has(n)) throw configError(`two tools are named "${n}": each tool needs a unique name`, n)
    seen.add(n)
  }
}
