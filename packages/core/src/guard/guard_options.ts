/**
 * createGuard's options, checked before the guard exists. A guard is the last line of defence: an
 * option it does not know (a typo such as `revocations` or `requiredScope`) would silently switch a
 * check off, and a store or source of the wrong shape would only fail at the first call. Both are
 * CONFIG_INVALID here instead, naming the option.
 */
import { MandateError } from '../errors.js'
import { parseScope } from '../narrowing/scopes.js'
import type { GuardOptions } from './guard.js'

const KNOWN_LIST = [
  'issuer', 'jwks', 'audience', 'replay', 'revocation', 'clock', 'skew', 'proofMaxAge', 'nonce', 'requireCallBinding', 'requiredScopes',
  'registry', 'maxLifetime', 'argumentLimits', 'mandateCache',
] as const satisfies readonly (keyof GuardOptions)[]
// a GuardOptions member missing from the list fails to compile (it would be refused as unknown)
const EVERY_OPTION_LISTED: Exclude<keyof GuardOptions, (typeof KNOWN_LIST)[number]> extends never ? true : never = true
void EVERY_OPTION_LISTED
const KNOWN: ReadonlySet<string> = new Set(KNOWN_LIST)

const bad = (message: string) => new MandateError('CONFIG_INVALID', message)
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const hasMethods = (v: unknown, ...names: string[]) => isObject(v) && names.every((n) => typeof v[n] === 'function')

/** @throws MandateError CONFIG_INVALID naming the first option that is unknown or of the wrong shape. */
export function checkGuardOptions(options: unknown): void {
  if (!isObject(options)) throw bad('createGuard needs an options object')
  for (const k of Object.keys(options)) {
    if (!KNOWN.has(k)) throw bad(`createGuard: unknown option "${k.slice(0, 64)}"`)
  }
  const { jwks, replay, revocation, nonce, requireCallBinding, requiredScopes, registry, mandateCache } = options
  if (!(typeof jwks === 'string' || jwks instanceof URL || hasMethods(jwks, 'resolve') || (isObject(jwks) && Array.isArray(jwks.keys)))) {
    throw bad('jwks must be a JWKS document, its URL or a key resolver')
  }
  // a static document with no key refuses every call: a configuration mistake, said now
  if (isObject(jwks) && Array.isArray(jwks.keys) && typeof jwks.resolve !== 'function' && jwks.keys.length === 0) throw bad('jwks has no keys')
  if (replay !== undefined && !hasMethods(replay, 'use')) throw bad('replay must be a ReplayStore (an object with use(key, expiresAt))')
  if (revocation !== undefined && !hasMethods(revocation, 'isRevoked')) throw bad('revocation must be a RevocationSource (an object with isRevoked(query))')
  if (nonce !== undefined && !hasMethods(nonce, 'current', 'check')) throw bad('nonce must be a NonceSource (an object with current() and check(nonce))')
  if (requireCallBinding !== undefined && typeof requireCallBinding !== 'boolean') throw bad('requireCallBinding must be true or false')
  if (requiredScopes !== undefined) {
    if (!Array.isArray(requiredScopes)) throw bad('requiredScopes must be an array of scope tokens')
    for (const s of requiredScopes) {
      let one = false
      try {
        one = parseScope(s).length === 1
      } catch {
        // reported below
      }
      if (!one) throw bad('requiredScopes must hold one scope token each (RFC 6749 §3.3)')
    }
  }
  if (registry !== undefined && !(registry instanceof Map)) throw bad('registry must be a constraint registry (createConstraintRegistry)')
  if (mandateCache !== undefined && mandateCache !== false && !isObject(mandateCache)) throw bad('mandateCache must be an options object or false')
}
