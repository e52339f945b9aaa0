/**
 * The one validator of federation rules (config file, admin API, CLI, and every stored rule when
 * it is read). Strict: an unknown member anywhere is refused, so a typo (`claim` for `claims`,
 * `glob:` misspelt) can never silently widen what a rule accepts. The task template is parsed with
 * the same element parsers as a grant request (exchange/params.ts), so a rule can hold nothing a
 * grant could not. Every refusal is CONFIG_INVALID naming the JSON pointer of the bad member.
 */
import { MandateError, type Budget, type JsonValue, type ToolGrant, isSecureTransportUrl } from '@mandate/core'
import { budgetParam, intParam, LIMITS, resourceList, scopeList, toolList } from '../exchange/params.js'
import { MIN_RSA_BITS, rsaModulusBits, usableKeys } from './issuer_keys.js'
import { publicKeyMembers } from './jwk_members.js'
import { globTokens } from './match.js'
import {
  FEDERATION_ALGS, type AgentMapping, type ClaimMatcher, type ClaimScalar, type FederationAlg, type FederationRule,
  type FederationTemplate, type ForeignTokenKind, type IssuerTrust, type SubjectMapping,
} from './types.js'

/** Options of {@link parseFederationRule}. */
export interface ParseRuleOptions {
  /** The Authority's longest mandate lifetime (s): a template's maxLifetime may not exceed it. */
  maxMandateLifetime: number
  /** This Authority's issuer, when known: a rule trusting it could never match (its own tokens are never external identities). */
  authorityIssuer?: string
}

const ID = /^[a-z0-9][a-z0-9._-]{0,63}$/
const CLAIM_NAME = /^[A-Za-z0-9_.:/$-]{1,128}$/
// a did (W3C DID syntax, bounded like a principal's did)
const DID = /^did:[a-z0-9]+:[A-Za-z0-9._:%-]+$/
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/
const TOKENS: readonly ForeignTokenKind[] = ['id_token', 'access_token', 'id_jag', 'workload']
// JWK members a public key may carry besides its type's own (RFC 7517 §4); anything else, and in
// particular every private member (d, p, q, dp, dq, qi, oth, k), is refused
const JWK_COMMON = ['kty', 'kid', 'use', 'alg', 'key_ops', 'x5c', 'x5t', 'x5t#S256']
const MAX_CLAIMS = 32
const MAX_ONE_OF = 64
const MAX_GLOB = 512

/** A CONFIG_INVALID refusal naming the JSON pointer of the member at fault. */
function bad(pointer: string, message: string, cause?: unknown): MandateError {
  return new MandateError('CONFIG_INVALID', `federation rule ${pointer || '/'}: ${message}`, { detail: { pointer }, ...(cause !== undefined ? { cause } : {}) })
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function object(v: unknown, pointer: string, allowed: readonly string[]): Record<string, unknown> {
  if (!isObject(v)) throw bad(pointer, 'must be an object')
  for (const k of Object.keys(v)) if (!allowed.includes(k)) throw bad(`${pointer}/${escape(k)}`, `unknown member "${k.slice(0, 40)}"`)
  return v
}

/** RFC 6901 escaping of one reference token. */
function escape(k: string): string {
  return k.slice(0, 128).replace(/~/g, '~0').replace(/\//g, '~1')
}

function text(v: unknown, pointer: string, max: number): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > max || CONTROL.test(v)) throw bad(pointer, `must be a string of 1..${max} characters without control characters`)
  return v
}

/** Run an element parser of the grant (exchange/params.ts), naming the pointer when it refuses. */
function element<T>(pointer: string, parse: () => T): T {
  try {
    return parse()
  } catch (err) {
    if (MandateError.is(err)) throw bad(pointer, err.message, err)
    throw err
  }
}

/** An https URL; http only on a loopback host (tests and local development). */
function webUrl(v: unknown, pointer: string): URL {
  const s = text(v, pointer, 2048)
  let u: URL
  try {
    u = new URL(s)
  } catch {
    throw bad(pointer, 'must be an absolute URL')
  }
  if (u.username || u.password || u.hash) throw bad(pointer, 'must not carry credentials or a fragment')
  if (!isSecureTransportUrl(u)) throw bad(pointer, 'must be an https URL (http only on 127.0.0.1, localhost or [::1])')
  return u
}

function parseTrust(v: unknown, p: string, opts: ParseRuleOptions): IssuerTrust {
  const o = object(v, p, ['issuer', 'discovery', 'jwksUri', 'jwks', 'algorithms'])
  // subjects are namespaced as `${iss}#${sub}`: an issuer with `#` would make that ambiguous
  const issuer = text(o.issuer, `${p}/issuer`, 512)
  if (issuer.includes('#')) throw bad(`${p}/issuer`, 'must not contain "#"')
  if (opts.authorityIssuer !== undefined && issuer === opts.authorityIssuer) throw bad(`${p}/issuer`, 'is this Authority: its own tokens are never external identities')
  const sources = (['discovery', 'jwksUri', 'jwks'] as const).filter((k) => o[k] !== undefined)
  if (sources.length !== 1) throw bad(p, 'must name exactly one of discovery, jwksUri, jwks')
  const out: IssuerTrust = { issuer, algorithms: parseAlgorithms(o.algorithms, `${p}/algorithms`) }
  if (o.discovery !== undefined) {
    if (o.discovery !== true) throw bad(`${p}/discovery`, 'must be true')
    const u = webUrl(issuer, `${p}/issuer`)
    if (u.search) throw bad(`${p}/issuer`, 'an issuer using discovery must not have a query')
    out.discovery = true
  } else if (o.jwksUri !== undefined) {
    out.jwksUri = webUrl(o.jwksUri, `${p}/jwksUri`).href
  } else {
    out.jwks = parseJwks(o.jwks, `${p}/jwks`)
  }
  return out
}

function parseAlgorithms(v: unknown, p: string): FederationAlg[] {
  if (!Array.isArray(v) || v.length === 0 || v.length > FEDERATION_ALGS.length) throw bad(p, `must list 1..${FEDERATION_ALGS.length} algorithms`)
  v.forEach((a, i) => {
    if (!(FEDERATION_ALGS as readonly unknown[]).includes(a)) throw bad(`${p}/${i}`, `must be one of ${FEDERATION_ALGS.join(', ')} (none and HMAC are never accepted)`)
  })
  if (new Set(v).size !== v.length) throw bad(p, 'must not repeat an algorithm')
  return [...(v as FederationAlg[])]
}

function parseJwks(v: unknown, p: string): { keys: Record<string, JsonValue>[] } {
  const o = object(v, p, ['keys'])
  if (!Array.isArray(o.keys) || o.keys.length === 0 || o.keys.length > 32) throw bad(`${p}/keys`, 'must list 1..32 public keys')
  const kids = new Set<string>()
  const keys = o.keys.map((k, i) => {
    const kp = `${p}/keys/${i}`
    if (!isObject(k)) throw bad(kp, 'must be a JWK object')
    const own = publicKeyMembers(k.kty)
    if (!own) throw bad(`${kp}/kty`, 'must be RSA, EC or OKP (symmetric keys are never accepted)')
    for (const m of Object.keys(k)) {
      if (!own.includes(m) && !JWK_COMMON.includes(m)) throw bad(`${kp}/${escape(m)}`, `"${m.slice(0, 20)}" is not a member of a public ${k.kty} key (private keys are never accepted)`)
    }
    for (const m of own) if (typeof k[m] !== 'string' || (k[m] as string).length === 0 || (k[m] as string).length > 2048) throw bad(`${kp}/${m}`, 'must be a base64url string')
    // jose will not verify with a shorter RSA key (and it is too weak to trust): refused now, not at the first token
    if (k.kty === 'RSA' && rsaModulusBits(k.n) < MIN_RSA_BITS) throw bad(`${kp}/n`, `must be an RSA modulus of at least ${MIN_RSA_BITS} bits`)
    if (k.kid !== undefined) {
      const kid = text(k.kid, `${kp}/kid`, 256)
      if (kids.has(kid)) throw bad(`${kp}/kid`, 'is used by two keys')
      kids.add(kid)
    }
    if (k.use !== undefined && k.use !== 'sig') throw bad(`${kp}/use`, 'must be "sig"')
    if (k.alg !== undefined && !(FEDERATION_ALGS as readonly unknown[]).includes(k.alg)) throw bad(`${kp}/alg`, 'is not an accepted algorithm')
    // a key that does not import (EC coordinates off the curve, an unknown curve) would verify nothing
    if (usableKeys([k]).length === 0) throw bad(kp, 'is not a usable public key (it does not import)')
    return JSON.parse(JSON.stringify(k)) as Record<string, JsonValue>
  })
  return { keys }
}

function scalar(v: unknown, p: string): ClaimScalar {
  if (typeof v === 'string') return text(v, p, 1024)
  if (typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))) return v
  throw bad(p, 'must be a string, a finite number or a boolean')
}

/** Check glob syntax: `*` and `**` only as whole segments, no `**` next to `**` (it would be redundant). */
function parseGlob(v: unknown, p: string): string {
  const g = text(v, p, MAX_GLOB)
  const segs = globTokens(g).filter((_, i) => i % 2 === 0)
  segs.forEach((s, i) => {
    if (s !== '*' && s !== '**' && s.includes('*')) throw bad(p, `"*" and "**" must be whole segments (between "/" or ":"), not part of "${s.slice(0, 40)}"`)
    if (s === '**' && segs[i + 1] === '**') throw bad(p, '"**" must not be followed by another "**"')
  })
  return g
}

function parseMatcher(v: unknown, p: string): ClaimMatcher {
  if (!isObject(v)) throw bad(p, 'must be an object with exactly one of exact, oneOf, glob')
  const keys = Object.keys(v)
  if (keys.length !== 1) throw bad(p, 'must have exactly one of exact, oneOf, glob')
  const k = keys[0] as string
  if (k === 'exact') return { exact: scalar(v.exact, `${p}/exact`) }
  if (k === 'oneOf') {
    const list = v.oneOf
    if (!Array.isArray(list) || list.length === 0 || list.length > MAX_ONE_OF) throw bad(`${p}/oneOf`, `must list 1..${MAX_ONE_OF} values`)
    return { oneOf: list.map((x, i) => scalar(x, `${p}/oneOf/${i}`)) }
  }
  if (k === 'glob') return { glob: parseGlob(v.glob, `${p}/glob`) }
  throw bad(`${p}/${escape(k)}`, `unknown matcher "${k.slice(0, 40)}" (use exact, oneOf or glob)`)
}

function parseClaims(v: unknown, p: string): Record<string, ClaimMatcher> {
  if (!isObject(v)) throw bad(p, 'must be an object of claim matchers')
  const names = Object.keys(v)
  if (names.length > MAX_CLAIMS) throw bad(p, `must have at most ${MAX_CLAIMS} claim matchers`)
  const out: Record<string, ClaimMatcher> = {}
  for (const n of names) {
    if (!CLAIM_NAME.test(n) || n === '__proto__') throw bad(`${p}/${escape(n)}`, 'is not a claim name')
    out[n] = parseMatcher(v[n], `${p}/${escape(n)}`)
  }
  return out
}

function claimName(v: unknown, p: string): string {
  if (typeof v !== 'string' || !CLAIM_NAME.test(v)) throw bad(p, 'must be a claim name')
  return v
}

function parseSubject(v: unknown, p: string): SubjectMapping {
  const o = object(v, p, ['claim', 'nameClaim', 'emailClaim'])
  const out: SubjectMapping = {}
  // the subject is always the token's `sub`: the Authority namespaces it as `<issuer>#<sub>`, and a
  // second claim (an e-mail, say) in the same namespace could collide with another person's `sub`
  if (o.claim !== undefined) {
    if (o.claim !== 'sub') throw bad(`${p}/claim`, 'must be "sub" (the subject is the issuer\'s sub; show other claims with nameClaim / emailClaim)')
    out.claim = 'sub'
  }
  if (o.nameClaim !== undefined) out.nameClaim = claimName(o.nameClaim, `${p}/nameClaim`)
  if (o.emailClaim !== undefined) out.emailClaim = claimName(o.emailClaim, `${p}/emailClaim`)
  return out
}

function parseAgent(v: unknown, p: string): AgentMapping {
  const o = object(v, p, ['name', 'role', 'lifetime'])
  const name = text(o.name, `${p}/name`, 128)
  if (!/^[\x20-\x7e]+$/.test(name)) throw bad(`${p}/name`, 'must be printable ASCII')
  for (const m of name.matchAll(/\{([^}]*)\}/g)) if (!/^[A-Za-z0-9_.-]{1,64}$/.test(m[1] as string)) throw bad(`${p}/name`, `placeholder {${(m[1] as string).slice(0, 40)}} is not a claim name`)
  const out: AgentMapping = { name, lifetime: element(`${p}/lifetime`, () => intParam(o.lifetime, 'lifetime', 1, 86_400)) }
  if (o.role !== undefined) {
    // a grantor-role workload has no bounded flow yet: refuse rather than admit something unchecked
    if (o.role === 'grantor') throw bad(`${p}/role`, 'role "grantor" is not supported yet for workload agents')
    if (o.role !== 'agent') throw bad(`${p}/role`, 'must be "agent"')
    out.role = 'agent'
  }
  return out
}

/** Claims every token of the issuer satisfies anyway (checked elsewhere, or the same for every workload). */
const NON_IDENTIFYING = new Set(['iss', 'aud', 'exp', 'nbf', 'iat', 'jti', 'azp', 'typ', 'auth_time'])

/** Whether a matcher narrows which workloads match: a claim that can tell them apart, and a glob with a literal segment. */
function identifies(name: string, m: ClaimMatcher): boolean {
  if (NON_IDENTIFYING.has(name)) return false
  if ('glob' in m) return m.glob.split(/[/:]/).some((seg) => seg !== '*' && seg !== '**' && seg !== '')
  return true
}

function parseTemplate(v: unknown, p: string, opts: ParseRuleOptions): FederationTemplate {
  const o = object(v, p, ['audiences', 'tools', 'scopes', 'maxLifetime', 'maxDepth', 'budget', 'maxUses', 'offlineHops'])
  const audiences = element(`${p}/audiences`, () => resourceList(o.audiences))
  if (!Array.isArray(o.tools)) throw bad(`${p}/tools`, 'must list 1..32 tool grants')
  const toolsIn = o.tools as unknown[]
  toolsIn.forEach((t, i) => element(`${p}/tools/${i}`, () => toolList([t])))
  const tools: ToolGrant[] = element(`${p}/tools`, () => toolList(toolsIn))
  // a grant located outside the template's audiences could never be issued: a mistake, said now
  tools.forEach((t, i) => t.locations?.forEach((l, j) => {
    if (!audiences.includes(l)) throw bad(`${p}/tools/${i}/locations/${j}`, 'must be one of the template audiences')
  }))
  const max = Math.min(opts.maxMandateLifetime, LIMITS.mandateExpiresIn[1])
  const out: FederationTemplate = { audiences, tools, maxLifetime: element(`${p}/maxLifetime`, () => intParam(o.maxLifetime, 'maxLifetime', 1, max)) }
  if (o.scopes !== undefined) out.scopes = element(`${p}/scopes`, () => scopeList(o.scopes))
  if (o.maxDepth !== undefined) out.maxDepth = element(`${p}/maxDepth`, () => intParam(o.maxDepth, 'maxDepth', ...LIMITS.maxDepth))
  if (o.budget !== undefined) out.budget = element(`${p}/budget`, (): Budget => budgetParam(o.budget))
  if (o.maxUses !== undefined) out.maxUses = element(`${p}/maxUses`, () => intParam(o.maxUses, 'maxUses', ...LIMITS.maxUses))
  if (o.offlineHops !== undefined) out.offlineHops = element(`${p}/offlineHops`, () => intParam(o.offlineHops, 'offlineHops', ...LIMITS.offlineHops))
  return out
}

const RULE_MEMBERS = ['id', 'description', 'kind', 'token', 'trust', 'audiences', 'claims', 'subject', 'agent', 'template', 'requireJti', 'maxTokenAge', 'clients']

/**
 * Validate one federation rule. Returns a fresh, normalized rule (no member of `input` is kept by
 * reference).
 *
 * @throws MandateError `CONFIG_INVALID` whose `detail.pointer` is the JSON pointer (RFC 6901) of
 * the member at fault, e.g. `/template/tools/0` or `/claims/ref/glob`.
 */
export function parseFederationRule(input: unknown, opts: ParseRuleOptions): FederationRule {
  if (!Number.isSafeInteger(opts?.maxMandateLifetime) || opts.maxMandateLifetime < 1) throw new MandateError('CONFIG_INVALID', 'maxMandateLifetime must be a positive integer')
  const o = object(input, '', RULE_MEMBERS)
  if (typeof o.id !== 'string' || !ID.test(o.id)) throw bad('/id', 'must match [a-z0-9][a-z0-9._-]{0,63}')
  if (o.kind !== 'subject' && o.kind !== 'agent') throw bad('/kind', 'must be "subject" or "agent"')
  if (!TOKENS.includes(o.token as ForeignTokenKind)) throw bad('/token', `must be one of ${TOKENS.join(', ')}`)
  const kind = o.kind
  const token = o.token as ForeignTokenKind
  if (token === 'id_jag' && kind !== 'subject') throw bad('/token', 'an ID-JAG names a person: only subject rules accept it')
  if (kind === 'agent' && token !== 'workload' && token !== 'access_token') throw bad('/token', 'an agent rule accepts workload or access_token tokens')
  const rule: FederationRule = {
    id: o.id, kind, token,
    trust: parseTrust(o.trust, '/trust', opts),
    claims: parseClaims(o.claims, '/claims'),
    template: parseTemplate(o.template, '/template', opts),
  }
  if (o.description !== undefined) {
    if (typeof o.description !== 'string' || o.description.length > 1024) throw bad('/description', 'must be a string of at most 1024 characters')
    rule.description = o.description
  }
  if (o.audiences !== undefined) {
    // the draft fixes an ID-JAG's audience: this Authority's issuer, nothing else
    if (token === 'id_jag') throw bad('/audiences', 'an ID-JAG is always for this Authority\'s issuer; audiences do not apply')
    if (!Array.isArray(o.audiences) || o.audiences.length === 0 || o.audiences.length > 16) throw bad('/audiences', 'must list 1..16 audiences')
    const list = o.audiences.map((a, i) => text(a, `/audiences/${i}`, 512))
    if (new Set(list).size !== list.length) throw bad('/audiences', 'must not repeat an audience')
    rule.audiences = list
  }
  if (o.subject !== undefined) rule.subject = parseSubject(o.subject, '/subject')
  if (kind === 'agent') {
    // a platform issuer signs tokens for every tenant (any GitHub repository can ask for any aud):
    // a workload rule must say which workloads it admits
    if (!Object.entries(rule.claims).some(([name, m]) => identifies(name, m))) {
      throw bad('/claims', 'an agent rule must match at least one claim that names the workload (repository, service account, SPIFFE ID…), not only iss, aud or times, nor with a glob of wildcards only')
    }
    if (o.agent === undefined) throw bad('/agent', 'an agent rule needs an agent mapping (name, lifetime)')
    rule.agent = parseAgent(o.agent, '/agent')
  } else if (o.agent !== undefined) {
    throw bad('/agent', 'only agent rules map to an agent')
  }
  if (o.requireJti !== undefined) {
    if (typeof o.requireJti !== 'boolean') throw bad('/requireJti', 'must be a boolean')
    rule.requireJti = o.requireJti
  }
  if (o.maxTokenAge !== undefined) rule.maxTokenAge = element('/maxTokenAge', () => intParam(o.maxTokenAge, 'maxTokenAge', 1, 7 * 86_400))
  if (o.clients !== undefined) {
    if (kind !== 'subject') throw bad('/clients', 'only subject rules name clients (a workload redeems its own token)')
    if (!Array.isArray(o.clients) || o.clients.length === 0 || o.clients.length > 64) throw bad('/clients', 'must list 1..64 dids')
    const list = o.clients.map((c, i) => {
      if (typeof c !== 'string' || c.length > 2048 || !DID.test(c)) throw bad(`/clients/${i}`, 'must be a did')
      return c
    })
    if (new Set(list).size !== list.length) throw bad('/clients', 'must not repeat a did')
    rule.clients = list
  }
  return rule
}

/**
 * Validate a list of rules (a rules file's `rules`), refusing two rules with one id.
 *
 * @throws MandateError `CONFIG_INVALID`; `detail.pointer` starts with `/rules/N`.
 */
export function parseFederationRules(list: unknown, opts: ParseRuleOptions): FederationRule[] {
  if (!Array.isArray(list)) throw bad('/rules', 'must be an array of rules')
  if (list.length > 500) throw bad('/rules', 'must list at most 500 rules')
  const ids = new Set<string>()
  return list.map((r, i) => {
    let rule: FederationRule
    try {
      rule = parseFederationRule(r, opts)
    } catch (err) {
      if (MandateError.is(err) && err.code === 'CONFIG_INVALID' && typeof err.detail?.pointer === 'string') {
        const pointer = `/rules/${i}${err.detail.pointer}`
        throw new MandateError('CONFIG_INVALID', err.message.replace(/^federation rule /, `federation rule /rules/${i}`), { detail: { pointer }, cause: err })
      }
      throw err
    }
    if (ids.has(rule.id)) throw bad(`/rules/${i}/id`, `the id ${rule.id} is used by two rules`)
    ids.add(rule.id)
    return rule
  })
}

/**
 * Validate a rules file: `{ "rules": [...] }` (federation.schema.json), with an optional `$schema`.
 *
 * @throws MandateError `CONFIG_INVALID` naming the JSON pointer.
 */
export function parseFederationFile(input: unknown, opts: ParseRuleOptions): FederationRule[] {
  const o = object(input, '', ['$schema', 'rules'])
  if (o.$schema !== undefined && typeof o.$schema !== 'string') throw bad('/$schema', 'must be a string')
  return parseFederationRules(o.rules, opts)
}
