/**
 * Verification of external tokens under federation rules, against a real local issuer on
 * 127.0.0.1 (discovery + JWKS, real RS256 / ES256 / EdDSA keys): the documented token shapes of
 * each source verify, and the adversarial set is refused with FOREIGN_TOKEN_INVALID and the
 * precise reason — before key lookup where the header alone says so. Key rotation at the issuer is
 * picked up without a restart, a retired key stops verifying, and an issuer that cannot be
 * reached fails closed (JWKS_UNAVAILABLE).
 */
import { createHmac, createPublicKey, createSign, type JsonWebKey } from 'node:crypto'
import { b64uEncode, MandateError } from '@mandate/core'
import { CompactSign, exportPKCS8 } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { IssuerKeys } from '../src/federation/issuer_keys.js'
import { verifyForeignToken, type VerifyForeignTokenOptions } from '../src/federation/foreign_token.js'
import { parseFederationRule } from '../src/federation/rule.js'
import { peekIssuer, selectRule } from '../src/federation/select.js'
import type { FederationRule } from '../src/federation/types.js'
import { startForeignIssuer, type ForeignIssuer } from './support/foreign_issuer.js'

const AUTH = 'http://127.0.0.1:7990'
const TOKEN_ENDPOINT = `${AUTH}/token`
const MCP = 'https://tickets.example.com/mcp'
const TEMPLATE = { audiences: [MCP], tools: [{ type: 'tool_access', tools: ['tickets.*'] }], maxLifetime: 900 }
const nowSec = () => Math.floor(Date.now() / 1000)

let idp: ForeignIssuer
let other: ForeignIssuer
let keys: IssuerKeys
let opts: VerifyForeignTokenOptions

const rule = (r: Record<string, unknown>): FederationRule => parseFederationRule({ template: TEMPLATE, ...r }, { maxMandateLifetime: 3600 })
let loginRule: FederationRule
let accessRule: FederationRule
let ghaRule: FederationRule
let k8sRule: FederationRule
let spiffeRule: FederationRule
let jagRule: FederationRule

beforeAll(async () => {
  idp = await startForeignIssuer()
  other = await startForeignIssuer()
  // cooldown 0: a token naming a new kid fetches the set again at once (rotation tests)
  keys = new IssuerKeys({ cooldownMs: 0, timeoutMs: 2000 })
  opts = { authorityIssuer: AUTH, tokenEndpoint: TOKEN_ENDPOINT, now: Date.now, skew: 30, keys }
  loginRule = rule({
    id: 'login', kind: 'subject', token: 'id_token', audiences: ['host-app-client'],
    trust: { issuer: idp.issuer, discovery: true, algorithms: ['RS256', 'ES256', 'EdDSA'] },
    claims: { email_verified: { exact: true } },
  })
  accessRule = rule({
    id: 'idp-access', kind: 'subject', token: 'access_token',
    trust: { issuer: idp.issuer, jwksUri: idp.jwksUri, algorithms: ['RS256'] }, claims: {},
  })
  ghaRule = rule({
    id: 'gha', kind: 'agent', token: 'workload', audiences: [AUTH],
    trust: { issuer: idp.issuer, jwksUri: idp.jwksUri, algorithms: ['RS256'] },
    claims: {
      repository: { exact: 'octo-org/octo-repo' }, ref: { glob: 'refs/heads/*' },
      sub: { glob: 'repo:octo-org/*:ref:refs/heads/main' }, event_name: { oneOf: ['push', 'workflow_dispatch'] },
    },
    agent: { name: 'ci:{repository}@{ref}', lifetime: 900 }, requireJti: true,
  })
  const rsa = idp.keys().find((k) => k.alg === 'RS256')
  k8sRule = rule({
    id: 'k8s', kind: 'agent', token: 'workload', audiences: [AUTH],
    trust: { issuer: idp.issuer, jwks: { keys: [rsa?.publicJwk] }, algorithms: ['RS256'] },
    claims: { sub: { glob: 'system:serviceaccount:payments:*' } },
    agent: { name: 'k8s:{sub}', lifetime: 600 },
  })
  spiffeRule = rule({
    id: 'spiffe', kind: 'agent', token: 'workload', audiences: ['mandate'],
    trust: { issuer: idp.issuer, jwksUri: idp.jwksUri, algorithms: ['ES256'] },
    claims: { sub: { glob: 'spiffe://trust.example.org/ns/payments/sa/*' } },
    agent: { name: 'spiffe:{sub}', lifetime: 300 },
  })
  jagRule = rule({
    id: 'jag', kind: 'subject', token: 'id_jag',
    trust: { issuer: idp.issuer, discovery: true, algorithms: ['RS256'] }, claims: {},
  })
})

afterAll(async () => {
  await idp.close()
  await other.close()
})

/** The refusal's reason (and that it is FOREIGN_TOKEN_INVALID for this rule). */
async function reasonOf(token: string, r: FederationRule, o: Partial<VerifyForeignTokenOptions> = {}): Promise<string> {
  try {
    await verifyForeignToken(token, r, { ...opts, ...o })
  } catch (err) {
    expect(MandateError.is(err), String(err)).toBe(true)
    const e = err as MandateError
    expect(e.code).toBe('FOREIGN_TOKEN_INVALID')
    expect(e.detail?.rule).toBe(r.id)
    // the message never carries the token
    expect(e.message).not.toContain(String(token).slice(0, 30))
    return String(e.detail?.reason)
  }
  throw new Error('expected a refusal')
}

function b64json(v: unknown): string {
  return b64uEncode(JSON.stringify(v))
}

describe('documented token shapes verify', () => {
  it.each(['RS256', 'ES256', 'EdDSA'] as const)('an OpenID Connect ID token signed %s, keys found by discovery', async (alg) => {
    const v = await verifyForeignToken(await idp.idToken({ alg, nonce: 'n-1' }), loginRule, { ...opts, nonce: 'n-1' })
    expect(v.rule.id).toBe('login')
    expect(v.header.alg).toBe(alg)
    expect(v.claims).toMatchObject({ iss: idp.issuer, sub: '248289761001', email: 'alice@example.com' })
  })

  it('a token without kid, when the issuer has one key of that type', async () => {
    expect((await verifyForeignToken(await idp.idToken({ alg: 'EdDSA', header: { kid: undefined } }), loginRule, opts)).header.kid).toBeUndefined()
  })

  it('the discovery document is fetched once and cached', async () => {
    const before = idp.hits.discovery
    for (let i = 0; i < 3; i++) await verifyForeignToken(await idp.idToken(), loginRule, opts)
    expect(idp.hits.discovery - before).toBeLessThanOrEqual(0)
    expect(idp.hits.discovery).toBeGreaterThanOrEqual(1)
  })

  it('discovery of an issuer with a path (OpenID Connect Discovery §4: the well-known path follows the issuer\'s)', async () => {
    const tenant = await startForeignIssuer({ path: 'tenants/acme' })
    try {
      const k = new IssuerKeys()
      expect(tenant.issuer).toMatch(/\/tenants\/acme$/)
      expect(await k.discover(tenant.issuer)).toBe(`${tenant.issuer}/jwks`)
      const r = rule({ id: 'tenant', kind: 'subject', token: 'id_token', audiences: ['host-app-client'], trust: { issuer: tenant.issuer, discovery: true, algorithms: ['EdDSA'] }, claims: {} })
      expect((await verifyForeignToken(await tenant.idToken({ alg: 'EdDSA' }), r, { ...opts, keys: k })).header.alg).toBe('EdDSA')
    } finally {
      await tenant.close()
    }
  })

  it('a GitHub Actions OIDC token (typ JWT, x5t, the documented claims)', async () => {
    const token = await idp.githubActions({ aud: AUTH })
    const v = await verifyForeignToken(token, ghaRule, opts)
    expect(v.header.typ).toBe('JWT')
    expect(v.claims).toMatchObject({ sub: 'repo:octo-org/octo-repo:ref:refs/heads/main', repository_owner: 'octo-org', job_workflow_ref: expect.stringContaining('@refs/heads/main') })
    // another branch's sub does not match the rule
    expect(await reasonOf(await idp.githubActions({ aud: AUTH, ref: 'refs/heads/dev' }), ghaRule)).toBe('claims')
    expect(await reasonOf(await idp.githubActions({ aud: AUTH, repository: 'evil-org/octo-repo' }), ghaRule)).toBe('claims')
  })

  it('a Kubernetes projected service-account token (no typ, nested kubernetes.io), inline keys', async () => {
    const v = await verifyForeignToken(await idp.kubernetes({ aud: [AUTH] }), k8sRule, opts)
    expect(v.header.typ).toBeUndefined()
    expect(v.claims['kubernetes.io']).toMatchObject({ namespace: 'payments', serviceaccount: { name: 'billing-agent' } })
    expect(await reasonOf(await idp.kubernetes({ aud: [AUTH], namespace: 'kube-system' }), k8sRule)).toBe('claims')
  })

  it('a SPIFFE JWT-SVID (ES256, aud list)', async () => {
    const v = await verifyForeignToken(await idp.spiffe(), spiffeRule, opts)
    expect(v.claims.sub).toBe('spiffe://trust.example.org/ns/payments/sa/billing-agent')
    expect(await reasonOf(await idp.spiffe({ spiffeId: 'spiffe://trust.example.org/ns/payments/sa/a/b' }), spiffeRule)).toBe('claims')
  })

  it('an ID-JAG for this Authority (typ oauth-id-jag+jwt)', async () => {
    const v = await verifyForeignToken(await idp.idJag({ aud: AUTH }), jagRule, opts)
    expect(v.claims).toMatchObject({ client_id: 'f53f191f9311af35', scope: 'tickets.read tickets.history', resource: MCP })
    expect((await verifyForeignToken(await idp.idJag({ claims: { aud: [AUTH] } }), jagRule, opts)).rule.id).toBe('jag')
  })

  it('an IdP access token typed at+jwt, or JWT, or untyped, for the default audiences', async () => {
    for (const typ of ['at+jwt', 'application/at+jwt', 'JWT', undefined]) {
      const t = await idp.sign({ iss: idp.issuer, sub: 'u1', aud: TOKEN_ENDPOINT, exp: nowSec() + 60, iat: nowSec() }, { header: { typ } })
      expect((await verifyForeignToken(t, accessRule, opts)).claims.sub).toBe('u1')
    }
  })
})

describe('the adversarial set: refused with FOREIGN_TOKEN_INVALID and the reason', () => {
  it('wrong issuer (another issuer\'s token; an iss claim changed)', async () => {
    expect(await reasonOf(await other.idToken(), loginRule)).toBe('issuer')
    expect(await reasonOf(await idp.idToken({ claims: { iss: `${idp.issuer}/` } }), loginRule)).toBe('issuer')
    expect(await reasonOf(await idp.idToken({ claims: { iss: undefined } }), loginRule)).toBe('issuer')
  })

  it('a token issued by this Authority itself', async () => {
    const self = rule({ id: 'self', kind: 'subject', token: 'id_token', audiences: ['host-app-client'], trust: { issuer: idp.issuer, discovery: true, algorithms: ['RS256'] }, claims: {} })
    expect(await reasonOf(await idp.idToken(), self, { authorityIssuer: idp.issuer })).toBe('issuer')
  })

  it('wrong audience, malformed aud, azp of another party', async () => {
    expect(await reasonOf(await idp.idToken({ aud: 'another-client' }), loginRule)).toBe('audience')
    expect(await reasonOf(await idp.idToken({ claims: { aud: undefined } }), loginRule)).toBe('audience')
    expect(await reasonOf(await idp.idToken({ claims: { aud: [1, 'host-app-client'] } }), loginRule)).toBe('audience')
    // default audiences: the Authority's issuer or token endpoint, nothing else
    expect(await reasonOf(await idp.sign({ iss: idp.issuer, sub: 'u', aud: `${AUTH}/other`, exp: nowSec() + 60 }), accessRule)).toBe('audience')
    expect(await reasonOf(await idp.idToken({ aud: ['host-app-client', 'x'], claims: { azp: 'x' } }), loginRule)).toBe('azp')
    expect((await verifyForeignToken(await idp.idToken({ aud: ['host-app-client', 'x'], claims: { azp: 'host-app-client' } }), loginRule, opts)).rule.id).toBe('login')
  })

  it('expired, not yet valid, iat in the future, too old, no exp', async () => {
    expect(await reasonOf(await idp.idToken({ now: nowSec() - 1000, lifetime: 600 }), loginRule)).toBe('expired')
    expect(await reasonOf(await idp.idToken({ claims: { exp: undefined } }), loginRule)).toBe('expired')
    expect(await reasonOf(await idp.idToken({ claims: { nbf: nowSec() + 600 } }), loginRule)).toBe('not_yet_valid')
    expect(await reasonOf(await idp.idToken({ now: nowSec() + 600 }), loginRule)).toBe('iat')
    const aged = { ...loginRule, id: 'aged', maxTokenAge: 60 }
    expect(await reasonOf(await idp.idToken({ now: nowSec() - 300, lifetime: 3600 }), aged)).toBe('too_old')
    expect(await reasonOf(await idp.idToken({ claims: { iat: undefined } }), aged)).toBe('iat')
    // within the skew is accepted
    expect((await verifyForeignToken(await idp.idToken({ claims: { nbf: nowSec() + 10 } }), loginRule, opts)).rule.id).toBe('login')
  })

  it('alg not allowed by the rule (ES256 and EdDSA tokens under an RS256-only rule)', async () => {
    expect(await reasonOf(await idp.githubActions({ aud: AUTH, alg: 'ES256' }), ghaRule)).toBe('alg')
    expect(await reasonOf(await idp.githubActions({ aud: AUTH, alg: 'EdDSA' }), ghaRule)).toBe('alg')
  })

  it('alg none (unsecured JWS)', async () => {
    const claims = { iss: idp.issuer, sub: 'u', aud: 'host-app-client', exp: nowSec() + 60, iat: nowSec(), email_verified: true }
    expect(await reasonOf(`${b64json({ alg: 'none', typ: 'JWT' })}.${b64json(claims)}.`, loginRule)).toBe('alg')
    expect(await reasonOf(`${b64json({ alg: 'none' })}.${b64json(claims)}.c2ln`, loginRule)).toBe('alg')
    expect(await reasonOf(`${b64json({ typ: 'JWT' })}.${b64json(claims)}.c2ln`, loginRule)).toBe('alg')
  })

  it('HS256 keyed with the issuer\'s RSA public key (PEM and JWK)', async () => {
    const rsa = idp.keys().find((k) => k.alg === 'RS256')
    if (!rsa) throw new Error('no RSA key')
    const pem = createPublicKey({ key: rsa.publicJwk as JsonWebKey, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString()
    expect(pem).toContain('BEGIN PUBLIC KEY')
    const claims = { iss: idp.issuer, sub: 'u', aud: 'host-app-client', exp: nowSec() + 60, iat: nowSec(), email_verified: true }
    for (const secret of [pem, JSON.stringify(rsa.publicJwk)]) {
      const input = `${b64json({ alg: 'HS256', typ: 'JWT', kid: rsa.kid })}.${b64json(claims)}`
      const token = `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`
      expect(await reasonOf(token, loginRule)).toBe('alg')
    }
  })

  it('RS/ES confusion: an ES256 signature under the RSA key\'s kid', async () => {
    const rsa = idp.keys().find((k) => k.alg === 'RS256')
    // the rule allows RS256 only: refused on alg before any key is looked up
    expect(await reasonOf(await idp.githubActions({ aud: AUTH, alg: 'ES256', header: { kid: rsa?.kid } }), ghaRule)).toBe('alg')
    // the rule allows both: no key of kty EC has that kid
    expect(await reasonOf(await idp.idToken({ alg: 'ES256', header: { kid: rsa?.kid } }), loginRule)).toBe('kid')
  })

  it('unknown kid; a valid key of another issuer (its kid, or this issuer\'s kid)', async () => {
    expect(await reasonOf(await idp.idToken({ header: { kid: 'no-such-key' } }), loginRule)).toBe('kid')
    const foreign = await other.idToken({ claims: { iss: idp.issuer } })
    expect(await reasonOf(foreign, loginRule)).toBe('kid')
    const rsa = idp.keys().find((k) => k.alg === 'RS256')
    expect(await reasonOf(await other.idToken({ claims: { iss: idp.issuer }, header: { kid: rsa?.kid } }), loginRule)).toBe('signature')
  })

  it('a tampered payload', async () => {
    const [h, , s] = (await idp.idToken()).split('.')
    const forged = { iss: idp.issuer, sub: 'admin', aud: 'host-app-client', exp: nowSec() + 60, iat: nowSec(), email_verified: true }
    expect(await reasonOf(`${h}.${b64json(forged)}.${s}`, loginRule)).toBe('signature')
  })

  it('a huge token, before anything is parsed', async () => {
    expect(await reasonOf(await idp.idToken({ claims: { pad: 'x'.repeat(17 * 1024) } }), loginRule)).toBe('size')
    expect(await reasonOf('a'.repeat(1024 * 1024), loginRule)).toBe('size')
    expect(await reasonOf(await idp.idToken({ claims: { pad: 'x'.repeat(2048) } }), loginRule, { maxTokenBytes: 1024 })).toBe('size')
  })

  it('typ confusion: a DPoP proof, a client assertion, a Mandate hop, an ID-JAG under an id_token rule; ID-JAG rules require the ID-JAG typ', async () => {
    for (const typ of ['dpop+jwt', 'client-authentication+jwt', 'mandate-hop+jwt', 'oauth-id-jag+jwt', 'at+jwt', 'JOSE']) {
      expect(await reasonOf(await idp.idToken({ header: { typ } }), loginRule), typ).toBe('typ')
    }
    expect(await reasonOf(await idp.idJag({ aud: AUTH, header: { typ: 'JWT' } }), jagRule)).toBe('typ')
    expect(await reasonOf(await idp.idJag({ aud: AUTH, header: { typ: undefined } }), jagRule)).toBe('typ')
    expect(await reasonOf(await idp.idToken({ header: { typ: 7 } }), loginRule)).toBe('malformed')
  })

  it('header members that could choose the key are refused', async () => {
    const rsa = idp.keys().find((k) => k.alg === 'RS256')
    for (const header of [{ jku: `${idp.issuer}/jwks` }, { jwk: rsa?.publicJwk }, { x5u: 'https://x.example/cert' }]) {
      expect(await reasonOf(await idp.idToken({ header }), loginRule)).toBe('header')
    }
    // crit (RFC 7515 §4.1.11) is refused whatever it lists; signed for real so only the header is wrong
    const input = `${b64json({ alg: 'RS256', kid: rsa?.kid, crit: ['exp'], exp: 1 })}.${b64json({ iss: idp.issuer, sub: 'u', aud: 'host-app-client', exp: nowSec() + 60, email_verified: true })}`
    const pkcs8 = await exportPKCS8(rsa?.privateKey as CryptoKey)
    const token = `${input}.${createSign('RSA-SHA256').update(input).sign(pkcs8, 'base64url')}`
    expect(await reasonOf(token, loginRule)).toBe('header')
  })

  it('ID-JAG: missing jti, missing client_id, missing iat, audience other than exactly this Authority', async () => {
    expect(await reasonOf(await idp.idJag({ aud: AUTH, claims: { jti: undefined } }), jagRule)).toBe('jti')
    expect(await reasonOf(await idp.idJag({ aud: AUTH, claims: { client_id: undefined } }), jagRule)).toBe('client_id')
    expect(await reasonOf(await idp.idJag({ aud: AUTH, claims: { iat: undefined } }), jagRule)).toBe('iat')
    expect(await reasonOf(await idp.idJag({ aud: TOKEN_ENDPOINT }), jagRule)).toBe('audience')
    expect(await reasonOf(await idp.idJag({ claims: { aud: [AUTH, 'https://other.example'] } }), jagRule)).toBe('audience')
  })

  it('jti required by the rule; jti malformed', async () => {
    expect(await reasonOf(await idp.githubActions({ aud: AUTH, claims: { jti: undefined } }), ghaRule)).toBe('jti')
    expect(await reasonOf(await idp.idToken({ claims: { jti: 42 } }), loginRule)).toBe('jti')
    expect(await reasonOf(await idp.idToken({ claims: { jti: 'j'.repeat(257) } }), loginRule)).toBe('jti')
  })

  it('nonce: must equal the one the client sent, both ways', async () => {
    expect(await reasonOf(await idp.idToken({ nonce: 'n-1' }), loginRule, { nonce: 'n-2' })).toBe('nonce')
    expect(await reasonOf(await idp.idToken({ nonce: 'n-1' }), loginRule)).toBe('nonce')
    expect(await reasonOf(await idp.idToken(), loginRule, { nonce: 'n-1' })).toBe('nonce')
  })

  it('sub missing, not a string, too long', async () => {
    expect(await reasonOf(await idp.idToken({ claims: { sub: undefined } }), loginRule)).toBe('subject')
    expect(await reasonOf(await idp.idToken({ claims: { sub: 12 } }), loginRule)).toBe('subject')
    expect(await reasonOf(await idp.idToken({ sub: 's'.repeat(256) }), loginRule)).toBe('subject')
  })

  it('claims that match no rule', async () => {
    expect(await reasonOf(await idp.idToken({ claims: { email_verified: false } }), loginRule)).toBe('claims')
    expect(await reasonOf(await idp.idToken({ claims: { email_verified: 'true' } }), loginRule)).toBe('claims')
  })

  it('malformed: not three parts, bad base64url, duplicate claims, a payload that is not an object', async () => {
    expect(await reasonOf('abc.def', loginRule)).toBe('malformed')
    expect(await reasonOf('a+b.c.d', loginRule)).toBe('malformed')
    expect(await reasonOf(`${b64json({ alg: 'RS256' })}.${b64json([1])}.c2ln`, loginRule)).toBe('malformed')
    const rsa = idp.keys().find((k) => k.alg === 'RS256')
    const dup = `{"iss":${JSON.stringify(idp.issuer)},"sub":"u","aud":"host-app-client","exp":${nowSec() + 60},"email_verified":true,"sub":"admin"}`
    const jws = await new CompactSign(new TextEncoder().encode(dup)).setProtectedHeader({ alg: 'RS256', kid: rsa?.kid as string }).sign(rsa?.privateKey as CryptoKey)
    expect(await reasonOf(jws, loginRule)).toBe('malformed')
    expect(await reasonOf(42 as unknown as string, loginRule)).toBe('malformed')
  })
})

describe('keys at the issuer change', () => {
  it('a rotated key verifies without a restart; a retired key is refused once the cache is renewed', async () => {
    const issuer = await startForeignIssuer()
    try {
      const k = new IssuerKeys({ cooldownMs: 0, cacheMaxAgeMs: 150 })
      const o = { ...opts, keys: k }
      const r = rule({ id: 'rot', kind: 'subject', token: 'id_token', audiences: ['host-app-client'], trust: { issuer: issuer.issuer, discovery: true, algorithms: ['RS256'] }, claims: {} })
      const oldKid = issuer.keys().find((x) => x.alg === 'RS256')?.kid as string
      await verifyForeignToken(await issuer.idToken(), r, o)
      const fresh = await issuer.rotate('RS256')
      // a token of the new key names a kid the cache lacks: the set is fetched again at once
      const v = await verifyForeignToken(await issuer.idToken({ kid: fresh.kid }), r, o)
      expect(v.header.kid).toBe(fresh.kid)
      // the old key is still published: its tokens still verify
      await verifyForeignToken(await issuer.idToken({ kid: oldKid }), r, o)
      issuer.retire(oldKid)
      await new Promise((res) => setTimeout(res, 200))
      expect(await reasonOf(await issuer.idToken({ kid: oldKid }), r, o)).toBe('kid')
      await verifyForeignToken(await issuer.idToken({ kid: fresh.kid }), r, o)
    } finally {
      await issuer.close()
    }
  })

  it('an unknown kid fetches the set at most once per cooldown', async () => {
    const issuer = await startForeignIssuer()
    try {
      const k = new IssuerKeys({ cooldownMs: 60_000 })
      const o = { ...opts, keys: k }
      const r = rule({ id: 'cool', kind: 'subject', token: 'id_token', audiences: ['host-app-client'], trust: { issuer: issuer.issuer, jwksUri: issuer.jwksUri, algorithms: ['RS256'] }, claims: {} })
      await verifyForeignToken(await issuer.idToken(), r, o)
      const before = issuer.hits.jwks
      for (let i = 0; i < 5; i++) expect(await reasonOf(await issuer.idToken({ header: { kid: `made-up-${i}` } }), r, o)).toBe('kid')
      expect(issuer.hits.jwks - before).toBe(0)
    } finally {
      await issuer.close()
    }
  })
})

describe('IssuerKeys options', () => {
  it('refuses durations that are not non-negative integers', () => {
    expect(() => new IssuerKeys({ cooldownMs: -1 })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }))
    expect(() => new IssuerKeys({ timeoutMs: 1.5 })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }))
  })
})

describe('fail closed when the issuer cannot be used (JWKS_UNAVAILABLE, 503)', () => {
  async function code(f: () => Promise<unknown>): Promise<string> {
    try {
      await f()
    } catch (err) {
      expect(MandateError.is(err)).toBe(true)
      return (err as MandateError).code
    }
    throw new Error('expected a refusal')
  }

  it('issuer down, discovery naming another issuer, issuer gone, JWKS too slow', async () => {
    const issuer = await startForeignIssuer()
    const r = rule({ id: 'down', kind: 'subject', token: 'id_token', audiences: ['host-app-client'], trust: { issuer: issuer.issuer, discovery: true, algorithms: ['RS256'] }, claims: {} })
    const viaUri = rule({ id: 'down-uri', kind: 'subject', token: 'id_token', audiences: ['host-app-client'], trust: { issuer: issuer.issuer, jwksUri: issuer.jwksUri, algorithms: ['RS256'] }, claims: {} })
    const token = await issuer.idToken()
    issuer.fault.down = true
    expect(await code(() => verifyForeignToken(token, r, { ...opts, keys: new IssuerKeys() }))).toBe('JWKS_UNAVAILABLE')
    expect(await code(() => verifyForeignToken(token, viaUri, { ...opts, keys: new IssuerKeys() }))).toBe('JWKS_UNAVAILABLE')
    issuer.fault.down = false
    issuer.fault.discoveryIssuer = 'https://evil.example'
    expect(await code(() => verifyForeignToken(token, r, { ...opts, keys: new IssuerKeys() }))).toBe('JWKS_UNAVAILABLE')
    issuer.fault.discoveryIssuer = undefined
    issuer.fault.delayMs = 500
    expect(await code(() => verifyForeignToken(token, viaUri, { ...opts, keys: new IssuerKeys({ timeoutMs: 100 }) }))).toBe('JWKS_UNAVAILABLE')
    issuer.fault.delayMs = 0
    await issuer.close()
    expect(await code(() => verifyForeignToken(token, r, { ...opts, keys: new IssuerKeys() }))).toBe('JWKS_UNAVAILABLE')
    // and selectRule lets it through: not the token's fault
    expect(await code(() => selectRule(token, [{ rule: r, source: 'config' }], { ...opts, keys: new IssuerKeys() }))).toBe('JWKS_UNAVAILABLE')
  })

  it('a key in the set that does not import (EC coordinates off the curve) is left out: a token naming it is refused for its kid, not a 503', async () => {
    const { generateKeyPair, exportJWK, SignJWT } = await import('jose')
    const good = await generateKeyPair('ES256', { extractable: true })
    const goodJwk = { ...(await exportJWK(good.publicKey)), kid: 'good', alg: 'ES256', use: 'sig' }
    const junk = { kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA', kid: 'junk', alg: 'ES256', use: 'sig' }
    const iss = 'http://127.0.0.1'
    const http = await import('node:http')
    const srv = http.createServer((_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [junk, goodJwk] })))
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
    try {
      const jwksUri = `http://127.0.0.1:${(srv.address() as { port: number }).port}/jwks`
      const r = rule({ id: 'junk', kind: 'subject', token: 'id_token', audiences: ['host-app-client'], trust: { issuer: iss, jwksUri, algorithms: ['ES256'] }, claims: {} })
      const now = Math.floor(Date.now() / 1000)
      const sign = (kid: string) => new SignJWT({ iss, sub: 'alice', aud: 'host-app-client', iat: now, exp: now + 300 }).setProtectedHeader({ alg: 'ES256', kid }).sign(good.privateKey)
      const o = { ...opts, keys: new IssuerKeys() }
      expect(await reasonOf(await sign('junk'), r, o)).toBe('kid')
      // the usable key beside it still verifies
      expect((await verifyForeignToken(await sign('good'), r, o)).claims.sub).toBe('alice')
    } finally {
      await new Promise((r) => srv.close(r))
    }
    // inline, the same key is refused when the rule is read
    expect(() => rule({ id: 'inline', kind: 'subject', token: 'id_token', audiences: ['host-app-client'], trust: { issuer: iss, jwks: { keys: [junk] }, algorithms: ['ES256'] }, claims: {} })).toThrow(/does not import/)
  })

  it('a key set larger than the cap', async () => {
    const issuer = await startForeignIssuer()
    try {
      const r = rule({ id: 'big', kind: 'subject', token: 'id_token', audiences: ['host-app-client'], trust: { issuer: issuer.issuer, jwksUri: issuer.jwksUri, algorithms: ['RS256'] }, claims: {} })
      expect(await code(async () => verifyForeignToken(await issuer.idToken(), r, { ...opts, keys: new IssuerKeys({ maxBytes: 256 }) }))).toBe('JWKS_UNAVAILABLE')
    } finally {
      await issuer.close()
    }
  })
})

describe('selectRule and peekIssuer', () => {
  it('tries only rules of the token\'s issuer, in order, with one verdict per rule', async () => {
    const elsewhere = rule({ id: 'elsewhere', kind: 'subject', token: 'id_token', audiences: ['host-app-client'], trust: { issuer: other.issuer, discovery: true, algorithms: ['RS256'] }, claims: {} })
    const strict = { ...loginRule, id: 'strict', claims: { email: { exact: 'bob@example.com' }, hd: { exact: 'example.com' } } }
    const later = { ...loginRule, id: 'later' }
    const before = other.hits.discovery + other.hits.jwks
    const { verified, explanation } = await selectRule(await idp.idToken(), [
      { rule: elsewhere, source: 'config' }, { rule: strict, source: 'store' }, { rule: loginRule, source: 'store' }, { rule: later, source: 'config' },
    ], opts)
    expect(verified?.rule.id).toBe('login')
    expect(explanation.issuer).toBe(idp.issuer)
    expect(explanation.matched).toBe('login')
    expect(explanation.verdicts.map((v) => [v.rule, v.source, v.matched, v.reason])).toEqual([
      ['elsewhere', 'config', false, 'issuer'], ['strict', 'store', false, 'claims'], ['login', 'store', true, undefined], ['later', 'config', false, 'shadowed'],
    ])
    expect(explanation.verdicts[0]?.reasons[0]).toBe(`issuer ${JSON.stringify(idp.issuer)} is not this rule's`)
    expect(explanation.verdicts[1]?.reasons).toHaveLength(2)
    // the other issuer was never contacted
    expect(other.hits.discovery + other.hits.jwks).toBe(before)
  })

  it('no rule matches: every verdict says why, nothing verified', async () => {
    const { verified, explanation } = await selectRule(await idp.idToken({ claims: { email_verified: false } }), [{ rule: loginRule, source: 'config' }, { rule: jagRule, source: 'config' }], opts)
    expect(verified).toBeUndefined()
    expect(explanation.matched).toBeUndefined()
    expect(explanation.verdicts.map((v) => v.reason)).toEqual(['claims', 'typ'])
  })

  it('peekIssuer is strict and bounded', async () => {
    expect(peekIssuer(await idp.idToken())).toBe(idp.issuer)
    expect(peekIssuer('garbage')).toBe('')
    expect(peekIssuer(`${b64json({ alg: 'RS256' })}.${b64json({ iss: 7 })}.c2ln`)).toBe('')
    expect(peekIssuer(`${b64json({ alg: 'RS256' })}.${b64uEncode('{"iss":"a","iss":"b"}')}.c2ln`)).toBe('')
    expect(peekIssuer(`${b64json({ alg: 'RS256' })}.${b64json({ iss: 'a', pad: 'x'.repeat(20_000) })}.c2ln`)).toBe('')
    const { explanation } = await selectRule('garbage', [{ rule: loginRule, source: 'config' }], opts)
    expect(explanation).toEqual({ issuer: '', verdicts: [{ rule: 'login', source: 'config', matched: false, reason: 'issuer', reasons: ['issuer (unreadable) is not this rule\'s'] }] })
  })
})
