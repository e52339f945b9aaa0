/**
 * The federation rule validator: strict everywhere (unknown members, matcher types, private or
 * symmetric keys, algorithms outside the allowed set), the kind/token combinations, and the
 * template parsed with the grant's own element parsers — each refusal naming its JSON pointer.
 */
import { MandateError } from '@mandate/core'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { exportJWK, generateKeyPair } from 'jose'
import { parseFederationFile, parseFederationRule, parseFederationRules } from '../src/federation/rule.js'
import { readFileSync } from 'node:fs'
import { Ajv2020 } from 'ajv/dist/2020.js'

const schema = JSON.parse(readFileSync(new URL('../federation.schema.json', import.meta.url), 'utf8')) as Record<string, unknown>

const OPTS = { maxMandateLifetime: 3600 }
const AUD = 'https://tickets.example.com/mcp'

function subjectRule(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: 'corp-login', kind: 'subject', token: 'id_token',
    trust: { issuer: 'https://login.example.com', discovery: true, algorithms: ['RS256'] },
    audiences: ['host-app-client'],
    claims: { email_verified: { exact: true }, hd: { oneOf: ['example.com', 'example.org'] } },
    template: { audiences: [AUD], tools: [{ type: 'tool_access', tools: ['tickets.*'] }], scopes: ['tickets:read'], maxLifetime: 900 },
    ...over,
  }
}

function agentRule(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: 'gha-deploy', kind: 'agent', token: 'workload',
    trust: { issuer: 'https://token.actions.githubusercontent.com', jwksUri: 'https://token.actions.githubusercontent.com/.well-known/jwks', algorithms: ['RS256'] },
    claims: { repository: { exact: 'acme/deploy' }, ref: { glob: 'refs/heads/*' } },
    agent: { name: 'ci:{repository}@{ref}', lifetime: 900 },
    template: { audiences: [AUD], tools: [{ type: 'tool_access', tools: ['deploy.*'] }], maxLifetime: 600 },
    ...over,
  }
}

/** The pointer a refusal names (and that it is CONFIG_INVALID). */
function pointerOf(f: () => unknown): string {
  try {
    f()
  } catch (err) {
    expect(MandateError.is(err)).toBe(true)
    const e = err as MandateError
    expect(e.code).toBe('CONFIG_INVALID')
    return String(e.detail?.pointer)
  }
  throw new Error('expected a refusal')
}

const parse = (r: unknown) => () => parseFederationRule(r, OPTS)

describe('parseFederationRule accepts', () => {
  it('a subject rule and an agent rule, as fresh objects', () => {
    const input = subjectRule()
    const rule = parseFederationRule(input, OPTS)
    expect(rule).toMatchObject({ id: 'corp-login', kind: 'subject', token: 'id_token', trust: { discovery: true } })
    expect(rule.template.tools).not.toBe((input.template as { tools: unknown }).tools)
    expect(parseFederationRule(agentRule(), OPTS).agent).toEqual({ name: 'ci:{repository}@{ref}', lifetime: 900 })
  })

  it('an ID-JAG rule, a SPIFFE rule with inline public keys, loopback http for tests', async () => {
    expect(parseFederationRule(subjectRule({ token: 'id_jag', audiences: undefined, requireJti: true, clients: ['did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK'] }), OPTS).token).toBe('id_jag')
    const { publicKey } = await generateKeyPair('ES256', { extractable: true })
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }
    const spiffe = agentRule({ id: 'spire', trust: { issuer: 'spiffe://trust.example.org', jwks: { keys: [jwk] }, algorithms: ['ES256'] }, claims: { sub: { glob: 'spiffe://trust.example.org/ns/payments/sa/*' } } })
    expect(parseFederationRule(spiffe, OPTS).trust.jwks?.keys[0]).toEqual(jwk)
    const local = agentRule({ trust: { issuer: 'http://127.0.0.1:9999', discovery: true, algorithms: ['ES256', 'EdDSA', 'Ed25519'] } })
    expect(parseFederationRule(local, OPTS).trust.algorithms).toEqual(['ES256', 'EdDSA', 'Ed25519'])
  })

  it('a rules file, refusing duplicate ids with the pointer of the second', () => {
    expect(parseFederationFile({ $schema: './federation.schema.json', rules: [subjectRule(), agentRule()] }, OPTS)).toHaveLength(2)
    expect(pointerOf(() => parseFederationRules([subjectRule(), agentRule({ id: 'corp-login' })], OPTS))).toBe('/rules/1/id')
    expect(pointerOf(() => parseFederationRules([subjectRule(), agentRule({ extra: 1 })], OPTS))).toBe('/rules/1/extra')
    expect(pointerOf(() => parseFederationFile({ rules: [], rule: [] }, OPTS))).toBe('/rule')
  })
})

describe('parseFederationRule refuses, naming the pointer', () => {
  it.each<[string, Record<string, unknown>, string]>([
    ['an unknown rule member', subjectRule({ claim: {} }), '/claim'],
    ['a bad id', subjectRule({ id: 'Corp Login' }), '/id'],
    ['an unknown kind', subjectRule({ kind: 'person' }), '/kind'],
    ['an unknown token kind', subjectRule({ token: 'saml' }), '/token'],
    ['an unknown trust member', subjectRule({ trust: { issuer: 'https://login.example.com', discovery: true, algorithms: ['RS256'], jku: 'x' } }), '/trust/jku'],
    ['no key source', subjectRule({ trust: { issuer: 'https://login.example.com', algorithms: ['RS256'] } }), '/trust'],
    ['two key sources', subjectRule({ trust: { issuer: 'https://login.example.com', discovery: true, jwksUri: 'https://login.example.com/jwks', algorithms: ['RS256'] } }), '/trust'],
    ['discovery on http (not loopback)', subjectRule({ trust: { issuer: 'http://login.example.com', discovery: true, algorithms: ['RS256'] } }), '/trust/issuer'],
    ['discovery: false', subjectRule({ trust: { issuer: 'https://login.example.com', discovery: false, algorithms: ['RS256'] } }), '/trust/discovery'],
    ['a jwksUri on http', agentRule({ trust: { issuer: 'x', jwksUri: 'http://keys.example.com/jwks', algorithms: ['RS256'] } }), '/trust/jwksUri'],
    ['an issuer with "#"', agentRule({ trust: { issuer: 'https://a.example#b', jwksUri: 'https://a.example/jwks', algorithms: ['RS256'] } }), '/trust/issuer'],
    ['alg none', subjectRule({ trust: { issuer: 'https://login.example.com', discovery: true, algorithms: ['RS256', 'none'] } }), '/trust/algorithms/1'],
    ['alg HS256', subjectRule({ trust: { issuer: 'https://login.example.com', discovery: true, algorithms: ['HS256'] } }), '/trust/algorithms/0'],
    ['no algorithms', subjectRule({ trust: { issuer: 'https://login.example.com', discovery: true, algorithms: [] } }), '/trust/algorithms'],
    ['a repeated algorithm', subjectRule({ trust: { issuer: 'https://login.example.com', discovery: true, algorithms: ['RS256', 'RS256'] } }), '/trust/algorithms'],
    ['an RSA private key', agentRule({ trust: { issuer: 'x', jwks: { keys: [{ kty: 'RSA', n: 'AQAB', e: 'AQAB', d: 'AQAB' }] }, algorithms: ['RS256'] } }), '/trust/jwks/keys/0/d'],
    ['RSA prime p', agentRule({ trust: { issuer: 'x', jwks: { keys: [{ kty: 'RSA', n: 'AQAB', e: 'AQAB', p: 'AQAB' }] }, algorithms: ['RS256'] } }), '/trust/jwks/keys/0/p'],
    ['RSA prime q', agentRule({ trust: { issuer: 'x', jwks: { keys: [{ kty: 'RSA', n: 'AQAB', e: 'AQAB', q: 'AQAB' }] }, algorithms: ['RS256'] } }), '/trust/jwks/keys/0/q'],
    ['an oct key', agentRule({ trust: { issuer: 'x', jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] }, algorithms: ['RS256'] } }), '/trust/jwks/keys/0/kty'],
    ['an OKP private key', agentRule({ trust: { issuer: 'x', jwks: { keys: [{ kty: 'OKP', crv: 'Ed25519', x: 'AQAB', d: 'AQAB' }] }, algorithms: ['EdDSA'] } }), '/trust/jwks/keys/0/d'],
    ['a "k" on an EC key', agentRule({ trust: { issuer: 'x', jwks: { keys: [{ kty: 'EC', crv: 'P-256', x: 'AQAB', y: 'AQAB', k: 'AQAB' }] }, algorithms: ['ES256'] } }), '/trust/jwks/keys/0/k'],
    ['a kty naming an Object.prototype member', agentRule({ trust: { issuer: 'x', jwks: { keys: [{ kty: 'constructor', n: 'AQAB', e: 'AQAB' }] }, algorithms: ['RS256'] } }), '/trust/jwks/keys/0/kty'],
    ['a kty of toString', agentRule({ trust: { issuer: 'x', jwks: { keys: [{ kty: 'toString', x: 'AQAB' }] }, algorithms: ['EdDSA'] } }), '/trust/jwks/keys/0/kty'],
    ['an encryption key', agentRule({ trust: { issuer: 'x', jwks: { keys: [{ kty: 'EC', crv: 'P-256', x: 'AQAB', y: 'AQAB', use: 'enc' }] }, algorithms: ['ES256'] } }), '/trust/jwks/keys/0/use'],
    ['an empty key set', agentRule({ trust: { issuer: 'x', jwks: { keys: [] }, algorithms: ['ES256'] } }), '/trust/jwks/keys'],
    ['an unknown matcher type', subjectRule({ claims: { sub: { regex: '.*' } } }), '/claims/sub/regex'],
    ['two matchers on one claim', subjectRule({ claims: { sub: { exact: 'a', glob: 'b' } } }), '/claims/sub'],
    ['no matcher on a claim', subjectRule({ claims: { sub: {} } }), '/claims/sub'],
    ['an empty oneOf', subjectRule({ claims: { sub: { oneOf: [] } } }), '/claims/sub/oneOf'],
    ['a oneOf of 65', subjectRule({ claims: { sub: { oneOf: Array.from({ length: 65 }, (_, i) => `u${i}`) } } }), '/claims/sub/oneOf'],
    ['a non-scalar in oneOf', subjectRule({ claims: { sub: { oneOf: ['a', { b: 1 }] } } }), '/claims/sub/oneOf/1'],
    ['a non-scalar exact', subjectRule({ claims: { sub: { exact: null } } }), '/claims/sub/exact'],
    ['"**" inside a segment', agentRule({ claims: { ref: { glob: 'refs/heads/**x' } } }), '/claims/ref/glob'],
    ['"*" inside a segment', agentRule({ claims: { ref: { glob: 'refs/heads/release-*' } } }), '/claims/ref/glob'],
    ['"**/**"', agentRule({ claims: { ref: { glob: 'refs/**/**' } } }), '/claims/ref/glob'],
    ['an agent rule without agent', agentRule({ agent: undefined }), '/agent'],
    ['an agent rule matching no claim', agentRule({ claims: {} }), '/claims'],
    ['a subject rule with agent', subjectRule({ agent: { name: 'x', lifetime: 60 } }), '/agent'],
    ['an agent rule for id tokens', agentRule({ token: 'id_token' }), '/token'],
    ['an agent rule for ID-JAGs', agentRule({ token: 'id_jag' }), '/token'],
    ['an agent lifetime of 0', agentRule({ agent: { name: 'x', lifetime: 0 } }), '/agent/lifetime'],
    ['an agent lifetime over a day', agentRule({ agent: { name: 'x', lifetime: 86_401 } }), '/agent/lifetime'],
    ['a grantor-role workload', agentRule({ agent: { name: 'x', lifetime: 60, role: 'grantor' } }), '/agent/role'],
    ['an unknown agent member', agentRule({ agent: { name: 'x', lifetime: 60, did: 'did:key:x' } }), '/agent/did'],
    ['a bad name placeholder', agentRule({ agent: { name: 'ci:{repo sitory}', lifetime: 60 } }), '/agent/name'],
    ['audiences on an ID-JAG rule', subjectRule({ token: 'id_jag' }), '/audiences'],
    ['clients on an agent rule', agentRule({ clients: ['did:key:z6Mk'] }), '/clients'],
    ['a client that is not a did', subjectRule({ clients: ['host-app'] }), '/clients/0'],
    ['maxTokenAge 0', subjectRule({ maxTokenAge: 0 }), '/maxTokenAge'],
    ['requireJti "yes"', subjectRule({ requireJti: 'yes' }), '/requireJti'],
  ])('%s', (_, rule, pointer) => {
    expect(pointerOf(parse(rule))).toBe(pointer)
  })

  const template = (over: Record<string, unknown>) => subjectRule({ template: { audiences: [AUD], tools: [{ type: 'tool_access', tools: ['tickets.*'] }], maxLifetime: 900, ...over } })
  it.each<[string, Record<string, unknown>, string]>([
    ['an unknown template member', template({ maxAudienceLifetime: 1 }), '/template/maxAudienceLifetime'],
    ['a relative audience', template({ audiences: ['/mcp'] }), '/template/audiences'],
    ['no tools', template({ tools: [] }), '/template/tools'],
    ['a malformed tool grant', template({ tools: [{ type: 'tool_access', tools: ['a'] }, { type: 'tool_access', tool: ['b'] }] }), '/template/tools/1'],
    ['a tool grant of another type', template({ tools: [{ type: 'payment', tools: ['a'] }] }), '/template/tools/0'],
    ['a scope with a space', template({ scopes: ['a b'] }), '/template/scopes'],
    ['maxLifetime above the Authority\'s', template({ maxLifetime: 3601 }), '/template/maxLifetime'],
    ['maxLifetime 0', template({ maxLifetime: 0 }), '/template/maxLifetime'],
    ['maxDepth 65', template({ maxDepth: 65 }), '/template/maxDepth'],
    ['a budget with an unknown member', template({ budget: { amount: 5, unit: 'USD', per: 'day' } }), '/template/budget'],
    ['maxUses 0', template({ maxUses: 0 }), '/template/maxUses'],
    ['offlineHops 9', template({ offlineHops: 9 }), '/template/offlineHops'],
  ])('%s', (_, rule, pointer) => {
    expect(pointerOf(parse(rule))).toBe(pointer)
  })

  it('a non-object rule, and bad options', () => {
    expect(pointerOf(parse(null))).toBe('')
    expect(pointerOf(parse([]))).toBe('')
    expect(() => parseFederationRule(subjectRule(), { maxMandateLifetime: 0 })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }))
  })
})

describe('federation.schema.json', () => {
  it('is published as @mandate/authority/federation.schema.json, draft 2020-12', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { exports: Record<string, string>; files: string[] }
    expect(pkg.exports['./federation.schema.json']).toBe('./federation.schema.json')
    expect(pkg.files).toContain('federation.schema.json')
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema')
  })
  const ajv = new Ajv2020({ strict: true, strictRequired: false, allErrors: true })
  const validateFile = ajv.compile(schema)
  it('accepts the rules the parser accepts', () => {
    expect(validateFile({ rules: [subjectRule(), agentRule(), subjectRule({ id: 'jag', token: 'id_jag', audiences: undefined })] }), JSON.stringify(validateFile.errors)).toBe(true)
  })
  it.each<[string, Record<string, unknown>]>([
    ['an unknown member', subjectRule({ claim: {} })],
    ['an unknown matcher', subjectRule({ claims: { sub: { regex: '.*' } } })],
    ['alg none', subjectRule({ trust: { issuer: 'https://login.example.com', discovery: true, algorithms: ['none'] } })],
    ['two key sources', subjectRule({ trust: { issuer: 'https://login.example.com', discovery: true, jwksUri: 'https://login.example.com/jwks', algorithms: ['RS256'] } })],
    ['a private key', agentRule({ trust: { issuer: 'x', jwks: { keys: [{ kty: 'RSA', n: 'AQAB', e: 'AQAB', d: 'AQAB' }] }, algorithms: ['RS256'] } })],
    ['an agent rule without agent', agentRule({ agent: undefined })],
    ['an ID-JAG agent rule', agentRule({ token: 'id_jag' })],
    ['an agent rule matching no claim', agentRule({ claims: {} })],
  ])('refuses %s, as the parser does', (_, rule) => {
    const clean = JSON.parse(JSON.stringify(rule)) as Record<string, unknown>
    expect(validateFile({ rules: [clean] })).toBe(false)
    expect(() => parseFederationRule(clean, OPTS)).toThrow(MandateError)
  })

  it('accepts every rule the parser accepts (generated rules; the parser is the stricter of the two)', () => {
    // each member: mostly a valid value, sometimes an invalid one (so both sides are exercised)
    const pick = <T>(valid: T, ...invalid: T[]) => invalid.length === 0 ? fc.constant(valid) : fc.oneof({ arbitrary: fc.constant(valid), weight: 12 }, { arbitrary: fc.constantFrom(...invalid), weight: 1 })
    const member = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined, freq: 2 })
    const matcher = fc.oneof(
      fc.constantFrom<unknown>({ exact: 'a' }, { exact: 1 }, { exact: true }, { oneOf: ['a', 2] }, { glob: 'repo:*/x' }, { glob: 'a/**' }),
      fc.constantFrom<unknown>({ exact: null }, { oneOf: [] }, { glob: 'a**' }, { regex: 'x' }, { exact: 'a', glob: 'b' }),
    )
    const shape = fc.constantFrom(
      { kind: 'subject', token: 'id_token' }, { kind: 'subject', token: 'id_jag' }, { kind: 'subject', token: 'access_token' },
      { kind: 'agent', token: 'workload', agent: { name: 'ci:{repository}', lifetime: 600 } },
      { kind: 'agent', token: 'access_token', agent: { name: 'x', lifetime: 60, role: 'agent' } },
      // invalid combinations
      { kind: 'agent', token: 'workload' }, { kind: 'agent', token: 'id_jag', agent: { name: 'x', lifetime: 60 } },
      { kind: 'subject', token: 'id_token', agent: { name: 'x', lifetime: 60 } }, { kind: 'agent', token: 'workload', agent: { name: 'x', lifetime: 0 } },
    )
    const rules = fc.record({
      id: pick('ok-id', 'Bad Id', ''),
      shape,
      trust: pick<unknown>(
        { issuer: 'https://idp.example', discovery: true, algorithms: ['RS256'] },
        { issuer: 'http://127.0.0.1:9', discovery: true, algorithms: ['ES256', 'EdDSA'] },
        { issuer: 'spiffe://td', jwksUri: 'https://td.example/jwks', algorithms: ['ES256'] },
        { issuer: 'k8s', jwks: { keys: [{ kty: 'OKP', crv: 'Ed25519', x: 'AQAB', kid: 'a' }] }, algorithms: ['EdDSA'] },
        { issuer: 'http://idp.example', discovery: true, algorithms: ['RS256'] },
        { issuer: 'a#b', jwksUri: 'https://td.example/jwks', algorithms: ['RS256'] },
        { issuer: 'x', jwksUri: 'http://td.example/jwks', algorithms: ['RS256'] },
        { issuer: 'x', jwks: { keys: [{ kty: 'oct', k: 'AQAB' }] }, algorithms: ['RS256'] },
        { issuer: 'x', jwks: { keys: [] }, algorithms: ['RS256'] },
        { issuer: 'x', discovery: true, jwksUri: 'https://td.example/jwks', algorithms: ['RS256'] },
        { issuer: 'https://idp.example', discovery: true, algorithms: ['none'] },
        { issuer: 'https://idp.example', discovery: true, algorithms: [] },
      ),
      audiences: member(pick<unknown>(['client'], [], ['a', 'a'])),
      claims: fc.dictionary(fc.constantFrom('sub', 'aud', 'repository', 'bad name'), matcher, { minKeys: 1, maxKeys: 2 }),
      template: pick<unknown>(
        { audiences: [AUD], tools: [{ type: 'tool_access', tools: ['t.*'] }], maxLifetime: 600 },
        { audiences: [AUD], tools: [], maxLifetime: 600 },
        { audiences: [AUD], tools: [{ type: 'tool_access', tools: ['t.*'] }], maxLifetime: 0 },
        { audiences: ['relative'], tools: [{ type: 'tool_access', tools: ['t.*'] }], maxLifetime: 60 },
      ),
      extras: member(pick<unknown>(
        { maxTokenAge: 60, requireJti: true, subject: { claim: 'email' } },
        { maxTokenAge: 0 }, { requireJti: 'yes' }, { clients: ['host'] }, { surprise: 1 },
      )),
    })
    const build = (g: { id: string; shape: object; trust: unknown; audiences: unknown; claims: object; template: unknown; extras: unknown }) => ({
      id: g.id, ...g.shape, trust: g.trust, ...(g.audiences !== undefined ? { audiences: g.audiences } : {}), claims: g.claims, template: g.template, ...(g.extras as object | undefined),
    })
    let accepted = 0
    fc.assert(fc.property(rules, (generated) => {
      const r = JSON.parse(JSON.stringify(build(generated))) as Record<string, unknown>
      let ok = true
      try {
        parseFederationRule(r, OPTS)
      } catch (err) {
        expect(MandateError.is(err) && err.code === 'CONFIG_INVALID').toBe(true)
        ok = false
      }
      if (ok) {
        accepted++
        expect(validateFile({ rules: [r] }), JSON.stringify(validateFile.errors)).toBe(true)
      }
    }), { numRuns: 4000 })
    // the generator reaches valid rules often enough for the property to mean something
    expect(accepted).toBeGreaterThan(100)
  })
})

