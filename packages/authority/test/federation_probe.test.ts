/**
 * Regressions of an outside probe of the federation grant, against a real local IdP (node:http on
 * 127.0.0.1, keys made by jose and node:crypto) and a real Authority over HTTP:
 *
 * 1. an RSA key shorter than 2048 bits (remote or inline) never turns a token into a 500: inline it
 *    is refused when the rule is read, remotely it is left out of the set (`kid`), and whatever jose
 *    throws while verifying is a typed refusal;
 * 2. a foreign token's `exp` is bounded (24 h ahead by default, `exp_too_far`), and so is how long
 *    its single use is remembered;
 * 3. an ID token with an audience the rule does not accept and no `azp` is refused (OpenID Connect
 *    Core §3.1.3.7);
 * 4. a failing issuer costs one outbound fetch per failure cooldown, not one per request, and the
 *    last good key set / discovery document keeps serving for a bounded stale period;
 * 5. a remote set listing the same key twice under one kid verifies that kid's tokens.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { generateKeyPairSync, randomUUID, sign as nodeSign, type KeyObject } from 'node:crypto'
import { createClientAssertion, createProof, Ed25519Key, MandateError, MemoryReplayStore, type ReplayStore } from '@mandate/core'
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAuthority, createAuthorityServer, type AuthorityServer } from '../src/index.js'
import { acceptedUntil, checkForeignToken, MAX_FOREIGN_TOKEN_EXP_AHEAD, verifyForeignToken, type VerifyForeignTokenOptions } from '../src/federation/foreign_token.js'
import { IssuerKeys, rsaModulusBits, usableKeys } from '../src/federation/issuer_keys.js'
import { parseFederationRule } from '../src/federation/rule.js'
import type { FederationRule } from '../src/federation/types.js'

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer'
const MCP = 'https://tickets.example.com/mcp'
const HOST = 'host-app-client'
const GHA = 'https://token.actions.githubusercontent.com'
const TEMPLATE = { audiences: [MCP], tools: [{ type: 'tool_access', tools: ['tickets.*'] }], maxLifetime: 600 }
const SKEW = 30
const now = () => Math.floor(Date.now() / 1000)
const b64u = (s: string | Buffer) => Buffer.from(s).toString('base64url')

/** A local IdP whose routes (status, body, delay) tests change, counting every fetch per path. */
interface Route { status: number; body: string; delayMs?: number; hits: number }
class FakeIdp {
  readonly routes = new Map<string, Route>()
  server!: Server
  base = ''
  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const r = this.routes.get(req.url ?? '')
      if (!r) {
        res.writeHead(404, { 'content-type': 'application/json' })
        res.end('{}')
        return
      }
      r.hits++
      const send = () => {
        res.writeHead(r.status, { 'content-type': 'application/json' })
        res.end(r.body)
      }
      if (r.delayMs) setTimeout(send, r.delayMs)
      else send()
    })
    await new Promise<void>((ok) => this.server.listen(0, '127.0.0.1', ok))
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`
    return this
  }
  route(path: string, r: { status?: number; body?: unknown; delayMs?: number }): void {
    const body = typeof r.body === 'string' ? r.body : JSON.stringify(r.body ?? {})
    this.routes.set(path, { status: r.status ?? 200, body, ...(r.delayMs ? { delayMs: r.delayMs } : {}), hits: this.routes.get(path)?.hits ?? 0 })
  }
  hits(path: string): number {
    return this.routes.get(path)?.hits ?? 0
  }
  async close(): Promise<void> {
    this.server.closeAllConnections()
    await new Promise<void>((ok) => this.server.close(() => ok()))
  }
}

/** An RSA key pair of node:crypto (jose will not sign with a short one: those tokens are signed by hand). */
function rsaKey(bits: number, kid: string): { priv: KeyObject; jwk: Record<string, string> } {
  const k = generateKeyPairSync('rsa', { modulusLength: bits })
  return { priv: k.privateKey, jwk: { ...(k.publicKey.export({ format: 'jwk' }) as Record<string, string>), kid, use: 'sig' } }
}
function rawToken(header: Record<string, unknown>, claims: Record<string, unknown>, key: KeyObject): string {
  const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(claims))}`
  return `${input}.${nodeSign('sha256', Buffer.from(input), key).toString('base64url')}`
}

const strong = rsaKey(2048, 'rs-1')
const weak = rsaKey(1024, 'weak')
let es: { key: CryptoKey; jwk: JWK }

const rule = (r: Record<string, unknown>): FederationRule => parseFederationRule({ template: TEMPLATE, ...r }, { maxMandateLifetime: 3600 })
const local = (o: Partial<VerifyForeignTokenOptions> = {}): VerifyForeignTokenOptions => ({
  authorityIssuer: 'http://127.0.0.1:7990', tokenEndpoint: 'http://127.0.0.1:7990/token', now: Date.now, skew: SKEW, keys: new IssuerKeys(), ...o,
})

async function refusal(p: Promise<unknown>): Promise<MandateError> {
  try {
    await p
  } catch (err) {
    expect(MandateError.is(err), String(err)).toBe(true)
    return err as MandateError
  }
  throw new Error('expected a refusal')
}

// ---- a real Authority over HTTP, federating the fake IdP ----
let idp: FakeIdp
let srv: AuthorityServer
let host: Ed25519Key
let agent: Ed25519Key
let tokenUrl = ''
let ISS = ''
let WEAK_ISS = ''
let DUP_ISS = ''
let DOWN_ISS = ''
const replayed: Array<{ key: string; expiresAt: number }> = []

/** A shared replay store that records every expiry it is asked to keep (what Redis would be asked). */
function recordingReplay(): ReplayStore {
  const inner = new MemoryReplayStore()
  return {
    use(key: string, expiresAt: number) {
      replayed.push({ key, expiresAt })
      // a real shared store refuses an expiry it cannot represent (Redis: 503 on exp 1e300)
      if (!Number.isSafeInteger(Math.ceil(expiresAt)) || expiresAt > now() + 400 * 86_400) throw new Error(`expiry ${expiresAt} out of range`)
      return inner.use(key, expiresAt)
    },
  }
}

async function post(form: Record<string, string>, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(tokenUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(form) })
  return { status: res.status, body: await res.json() as Record<string, unknown> }
}
const subjectGrant = (assertion: string) => post({
  grant_type: JWT_BEARER, assertion, agent: agent.did,
  client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
  client_assertion: createClientAssertion(host, { clientId: host.did, audience: tokenUrl, now: now() }),
})
const workloadGrant = (assertion: string) => post({ grant_type: JWT_BEARER, assertion }, { dpop: createProof(Ed25519Key.generate(), { method: 'POST', url: tokenUrl }) })
const idClaims = (iss: string, over: Record<string, unknown> = {}) => ({ iss, sub: 'alice', aud: HOST, iat: now(), exp: now() + 300, jti: randomUUID(), ...over })
const signed = (claims: Record<string, unknown>, header: Record<string, unknown> = { kid: 'rs-1' }) => rawToken({ alg: 'RS256', ...header }, claims, strong.priv)

function expectRefused(r: { status: number; body: Record<string, unknown> }, reason: string): void {
  expect(r.status, JSON.stringify(r.body)).toBe(400)
  expect(r.body).toMatchObject({ error: 'invalid_grant', mandate_code: 'FOREIGN_TOKEN_INVALID', reason })
}

beforeAll(async () => {
  const e = await generateKeyPair('ES256', { extractable: true })
  es = { key: e.privateKey, jwk: { ...(await exportJWK(e.publicKey)), kid: 'es-1', use: 'sig', alg: 'ES256' } }
  idp = await new FakeIdp().start()
  ISS = `${idp.base}/main`
  WEAK_ISS = `${idp.base}/weak`
  DUP_ISS = `${idp.base}/dup`
  DOWN_ISS = `${idp.base}/down`
  idp.route('/main/jwks', { body: { keys: [strong.jwk, es.jwk] } })
  idp.route('/weak/jwks', { body: { keys: [weak.jwk, strong.jwk] } })
  idp.route('/dup/jwks', { body: { keys: [strong.jwk, { ...strong.jwk }] } })
  idp.route('/down/jwks', { status: 500, body: 'oops' })
  const rules = [
    { id: 'main', kind: 'subject', token: 'id_token', audiences: [HOST, 'host-app-2'], trust: { issuer: ISS, jwksUri: `${idp.base}/main/jwks`, algorithms: ['RS256', 'ES256'] }, claims: {}, template: TEMPLATE },
    { id: 'aged', kind: 'subject', token: 'id_token', audiences: [HOST], trust: { issuer: `${ISS}/aged`, jwksUri: `${idp.base}/main/jwks`, algorithms: ['RS256'] }, claims: {}, maxTokenAge: 600, template: TEMPLATE },
    { id: 'weak', kind: 'subject', token: 'id_token', audiences: [HOST], trust: { issuer: WEAK_ISS, jwksUri: `${idp.base}/weak/jwks`, algorithms: ['RS256'] }, claims: {}, template: TEMPLATE },
    { id: 'dup', kind: 'subject', token: 'id_token', audiences: [HOST], trust: { issuer: DUP_ISS, jwksUri: `${idp.base}/dup/jwks`, algorithms: ['RS256'] }, claims: {}, template: TEMPLATE },
    { id: 'gha', kind: 'agent', token: 'workload', trust: { issuer: GHA, jwksUri: `${idp.base}/main/jwks`, algorithms: ['RS256'] }, claims: { repository: { exact: 'acme/app' } }, agent: { name: 'ci:{repository}', lifetime: 600 }, template: TEMPLATE },
    { id: 'down', kind: 'agent', token: 'workload', trust: { issuer: DOWN_ISS, jwksUri: `${idp.base}/down/jwks`, algorithms: ['RS256'] }, claims: { repository: { exact: 'acme/app' } }, agent: { name: 'ci', lifetime: 600 }, template: TEMPLATE },
  ]
  srv = await createAuthorityServer({
    port: 0, hostname: '127.0.0.1',
    authority: { skew: SKEW, replay: recordingReplay(), unattributedRefusals: { burst: 10_000, perSecond: 10_000 }, federation: { rules } },
  })
  tokenUrl = srv.authority.endpoints.token
  host = Ed25519Key.generate()
  agent = Ed25519Key.generate()
  await srv.authority.registerAgent({ did: host.did, name: 'host', role: 'grantor' })
  await srv.authority.registerAgent({ did: agent.did, name: 'agent' })
}, 30_000)

afterAll(async () => {
  await srv?.close()
  await idp?.close()
})

describe('1. RSA keys shorter than 2048 bits: never a 500', () => {
  it('a rule whose inline JWKS has a short RSA key is refused when read (CONFIG_INVALID naming the key)', async () => {
    const bad = { id: 'inline-weak', kind: 'subject', token: 'id_token', audiences: [HOST], trust: { issuer: 'https://idp.example', jwks: { keys: [strong.jwk, weak.jwk] }, algorithms: ['RS256'] }, claims: {} }
    const err = await refusal(Promise.resolve().then(() => rule(bad)))
    expect(err.code).toBe('CONFIG_INVALID')
    expect(err.detail?.pointer).toBe('/trust/jwks/keys/1/n')
    expect(err.message).toContain('2048')
    // nor can an Authority start with it
    expect((await refusal(createAuthorityServer({ port: 0, hostname: '127.0.0.1', authority: { federation: { rules: [{ ...bad, template: TEMPLATE }] } } }))).code).toBe('CONFIG_INVALID')
    // a 2048-bit key alone is fine; the modulus is measured in bits, not base64 characters
    expect(rule({ ...bad, trust: { ...bad.trust, jwks: { keys: [strong.jwk] } } }).trust.jwks?.keys).toHaveLength(1)
    expect(rsaModulusBits(strong.jwk.n)).toBe(2048)
    expect(rsaModulusBits(weak.jwk.n)).toBe(1024)
    expect(rsaModulusBits('')).toBe(0)
    expect(rsaModulusBits('AAAA')).toBe(0)
    expect(rsaModulusBits('not base64url!')).toBe(0)
    expect(rsaModulusBits(b64u(Buffer.concat([Buffer.from([0]), Buffer.from(weak.jwk.n as string, 'base64url')])))).toBe(1024)
  })

  it('a remote JWKS with a short RSA key: a token naming it is 400 kid over HTTP (forged or genuinely signed), the good key still works', async () => {
    expectRefused(await subjectGrant(signed(idClaims(WEAK_ISS), { kid: 'weak' })), 'kid')
    expectRefused(await subjectGrant(rawToken({ alg: 'RS256', kid: 'weak' }, idClaims(WEAK_ISS), weak.priv)), 'kid')
    // without kid: the short key is not a candidate, so the one usable RSA key verifies
    expect((await subjectGrant(signed(idClaims(WEAK_ISS), {}))).status).toBe(200)
    expect((await subjectGrant(signed(idClaims(WEAK_ISS)))).status).toBe(200)
  })

  it('whatever jose throws while verifying is a typed refusal (a resolver handing out a short key, or failing oddly)', async () => {
    const r = rule({ id: 'direct', kind: 'subject', token: 'id_token', audiences: [HOST], trust: { issuer: WEAK_ISS, jwksUri: `${idp.base}/weak/jwks`, algorithms: ['RS256'] }, claims: {} })
    const token = rawToken({ alg: 'RS256', kid: 'weak' }, idClaims(WEAK_ISS), weak.priv)
    const { createPublicKey } = await import('node:crypto')
    const handing = (get: () => Promise<unknown>) => ({ resolver: () => get }) as unknown as IssuerKeys
    const shortKey = handing(async () => createPublicKey({ key: weak.jwk, format: 'jwk' }))
    expect(await checkForeignToken(token, r, local({ keys: shortKey }))).toMatchObject({ refused: { reason: 'kid' } })
    const odd = handing(async () => { throw new RangeError('something unexpected') })
    expect(await checkForeignToken(token, r, local({ keys: odd }))).toMatchObject({ refused: { reason: 'signature' } })
    // a key-set problem stays what it is
    const down = handing(async () => { throw new MandateError('JWKS_UNAVAILABLE', 'down') })
    expect((await refusal(checkForeignToken(token, r, local({ keys: down })))).code).toBe('JWKS_UNAVAILABLE')
    // and the real resolver leaves the short key out of the set: kid
    expect(await checkForeignToken(token, r, local())).toMatchObject({ refused: { reason: 'kid' } })
  })

  it('usableKeys leaves out short RSA, symmetric, private and unknown keys', () => {
    const priv = { ...strong.jwk, kid: 'p', d: 'AAAA' }
    const kept = usableKeys([weak.jwk, strong.jwk, es.jwk, { kty: 'oct', k: 'c2VjcmV0', kid: 'hs' }, priv, { kty: 'AKP', kid: 'x' }, 'x', null, { kty: 'RSA', kid: 'n' }])
    expect(kept.map((k) => k.kid)).toEqual(['rs-1', 'es-1'])
  })

  it('usableKeys skips a kty that names an Object.prototype member instead of throwing', () => {
    const odd = ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf'].map((kty) => ({ kty, kid: kty, x: 'AQAB', n: 'AQAB', e: 'AQAB' }))
    expect(usableKeys([...odd, es.jwk]).map((k) => k.kid)).toEqual(['es-1'])
  })
})

describe('2. exp is bounded', () => {
  it('exp far ahead is 400 exp_too_far (subject and workload tokens), not a 503 from the replay store nor an acceptance', async () => {
    const before = replayed.length
    for (const exp of [1e300, 9e15, 1e15, 1e13, now() + MAX_FOREIGN_TOKEN_EXP_AHEAD + SKEW + 120]) {
      expectRefused(await subjectGrant(signed(idClaims(ISS, { exp }))), 'exp_too_far')
    }
    for (const exp of [1e300, 1e15]) {
      expectRefused(await workloadGrant(signed({ iss: GHA, sub: 'repo:acme/app:ref:refs/heads/main', aud: srv.authority.issuer, repository: 'acme/app', exp })), 'exp_too_far')
    }
    // refused before any single use was spent
    expect(replayed.slice(before).filter((r) => r.key.includes('fed'))).toEqual([])
    // up to the bound is fine
    expect((await subjectGrant(signed(idClaims(ISS, { exp: now() + MAX_FOREIGN_TOKEN_EXP_AHEAD - 60 })))).status).toBe(200)
  })

  it('the single use is remembered until the token could no longer be accepted, never longer than the bound', async () => {
    const spent = async (assertion: string, expectStatus = 200): Promise<number> => {
      const before = replayed.length
      const r = await subjectGrant(assertion)
      expect(r.status, JSON.stringify(r.body)).toBe(expectStatus)
      const fed = replayed.slice(before).filter((x) => x.key.includes('fedjti'))
      expect(fed).toHaveLength(1)
      return (fed[0] as { expiresAt: number }).expiresAt
    }
    const exp = now() + 3 * 3600
    expect(await spent(signed(idClaims(ISS, { exp })))).toBe(exp + SKEW)
    // maxTokenAge 600: refused after iat + 600 (+ skew) anyway, so remembered only that long
    const iat = now()
    expect(await spent(signed(idClaims(`${ISS}/aged`, { iat, exp: now() + 20 * 3600 })))).toBe(iat + 600 + SKEW)
    const t = new Date().getTime()
    expect(await spent(signed(idClaims(ISS, { exp: now() + MAX_FOREIGN_TOKEN_EXP_AHEAD })))).toBeLessThanOrEqual(Math.floor(t / 1000) + MAX_FOREIGN_TOKEN_EXP_AHEAD + SKEW + 2)
  })

  it('verifyForeignToken and acceptedUntil directly (maxExpAhead is an option)', async () => {
    const r = rule({ id: 'exp', kind: 'subject', token: 'id_token', audiences: [HOST], trust: { issuer: ISS, jwksUri: `${idp.base}/main/jwks`, algorithms: ['RS256'] }, claims: {} })
    const o = local()
    const token = signed(idClaims(ISS, { exp: now() + 7200 }))
    const v = await verifyForeignToken(token, r, o)
    expect((await refusal(verifyForeignToken(token, r, { ...o, maxExpAhead: 3600 }))).detail).toMatchObject({ reason: 'exp_too_far', rule: 'exp' })
    const n = now()
    expect(acceptedUntil(v, n, SKEW)).toBe((v.claims.exp as number) + SKEW)
    expect(acceptedUntil({ ...v, claims: { ...v.claims, exp: 1e300 } }, n, SKEW)).toBe(n + MAX_FOREIGN_TOKEN_EXP_AHEAD + SKEW)
    expect(acceptedUntil({ ...v, rule: { ...r, maxTokenAge: 60 } }, n, SKEW)).toBe((v.claims.iat as number) + 60 + SKEW)
  })
})

describe('3. ID token audiences (OpenID Connect Core §3.1.3.7)', () => {
  it('an audience the rule does not accept, without azp: 400 azp; with azp it must be an accepted one', async () => {
    expectRefused(await subjectGrant(signed(idClaims(ISS, { aud: [HOST, 'other-rp'] }))), 'azp')
    expectRefused(await subjectGrant(signed(idClaims(ISS, { aud: ['other-rp', HOST] }))), 'azp')
    expectRefused(await subjectGrant(signed(idClaims(ISS, { aud: [HOST, 'other-rp'], azp: 'other-rp' }))), 'azp')
    expect((await subjectGrant(signed(idClaims(ISS, { aud: [HOST, 'other-rp'], azp: HOST })))).status).toBe(200)
    // only accepted audiences: no azp needed
    expect((await subjectGrant(signed(idClaims(ISS, { aud: [HOST, 'host-app-2'] })))).status).toBe(200)
    expect((await subjectGrant(signed(idClaims(ISS, { aud: [HOST] })))).status).toBe(200)
    expect((await subjectGrant(signed(idClaims(ISS)))).status).toBe(200)
  })

  it('other token kinds keep their audience rules (a JWT-SVID may list several audiences)', async () => {
    const r = rule({ id: 'svid', kind: 'agent', token: 'workload', audiences: ['mandate'], trust: { issuer: ISS, jwksUri: `${idp.base}/main/jwks`, algorithms: ['RS256'] }, claims: { sub: { glob: 'spiffe://t.example/ns/a/sa/*' } }, agent: { name: 'x', lifetime: 60 } })
    const t = signed({ iss: ISS, sub: 'spiffe://t.example/ns/a/sa/b', aud: ['mandate', 'other'], exp: now() + 300 })
    expect(await checkForeignToken(t, r, local())).toHaveProperty('verified')
  })
})

describe('4. a failing issuer: one fetch per failure cooldown, the last good keys served while stale', () => {
  it('over HTTP: 20 sequential and 20 concurrent grants naming a failing JWKS cost one fetch, all 503 JWKS_UNAVAILABLE', async () => {
    const gha = (i: number) => signed({ iss: DOWN_ISS, sub: 'x', aud: srv.authority.issuer, repository: 'acme/app', exp: now() + 300 }, { kid: `k-${i}` })
    const before = idp.hits('/down/jwks')
    const statuses = new Set<string>()
    for (let i = 0; i < 20; i++) {
      const r = await workloadGrant(gha(i))
      statuses.add(`${r.status} ${String(r.body.mandate_code)}`)
    }
    const concurrent = await Promise.all(Array.from({ length: 20 }, async (_, i) => workloadGrant(gha(100 + i))))
    for (const r of concurrent) statuses.add(`${r.status} ${String(r.body.mandate_code)}`)
    expect([...statuses]).toEqual(['503 JWKS_UNAVAILABLE'])
    expect(idp.hits('/down/jwks') - before).toBe(1)
  })

  it('a key set: failures cooled down, then retried; the last good set used for at most staleMaxAgeMs past its age', async () => {
    const p = `/stale-${randomUUID().slice(0, 8)}`
    idp.route(`${p}/jwks`, { body: { keys: [strong.jwk] } })
    let t = 1_000_000
    const keys = new IssuerKeys({ now: () => t, cacheMaxAgeMs: 1000, failureCooldownMs: 500, staleMaxAgeMs: 10_000, cooldownMs: 0 })
    const r = rule({ id: 'stale', kind: 'subject', token: 'id_token', audiences: [HOST], trust: { issuer: ISS, jwksUri: `${idp.base}${p}/jwks`, algorithms: ['RS256'] }, claims: {} })
    const o = local({ keys })
    const ok = async () => expect((await verifyForeignToken(signed(idClaims(ISS)), r, o)).rule.id).toBe('stale')
    await ok()
    expect(idp.hits(`${p}/jwks`)).toBe(1)
    idp.route(`${p}/jwks`, { status: 500, body: 'down' })
    t += 2000 // the set aged out: refreshing fails, the last good set still verifies
    await ok()
    expect(idp.hits(`${p}/jwks`)).toBe(2)
    t += 100 // within the failure cooldown: no fetch
    await ok()
    await ok()
    expect(idp.hits(`${p}/jwks`)).toBe(2)
    t += 500 // cooldown over: one more try
    await ok()
    expect(idp.hits(`${p}/jwks`)).toBe(3)
    t += 10_000 // past cacheMaxAge + staleMaxAge: no more stale keys, fail closed
    expect((await refusal(verifyForeignToken(signed(idClaims(ISS)), r, o))).code).toBe('JWKS_UNAVAILABLE')
    expect(idp.hits(`${p}/jwks`)).toBe(4)
    // during the cooldown the same 503, without a fetch
    const cooled = await refusal(verifyForeignToken(signed(idClaims(ISS)), r, o))
    expect(cooled.code).toBe('JWKS_UNAVAILABLE')
    expect(cooled.detail).toMatchObject({ reason: 'jwks_status', cooldown: true })
    expect(idp.hits(`${p}/jwks`)).toBe(4)
    // the issuer is back: after the cooldown, fetched and used again
    idp.route(`${p}/jwks`, { body: { keys: [strong.jwk] } })
    t += 600
    await ok()
    expect(idp.hits(`${p}/jwks`)).toBe(5)
  })

  it('discovery: a failing document is fetched once per cooldown; an aged-out one keeps serving its jwks_uri while the refresh fails', async () => {
    const p = `/disc-${randomUUID().slice(0, 8)}`
    const issuer = `${idp.base}${p}`
    const doc = `${p}/.well-known/openid-configuration`
    idp.route(doc, { status: 500, body: 'down' })
    idp.route(`${p}/jwks`, { body: { keys: [strong.jwk] } })
    let t = 5_000_000
    const keys = new IssuerKeys({ now: () => t, discoveryMaxAgeMs: 1000, failureCooldownMs: 500, staleMaxAgeMs: 10_000 })
    const r = rule({ id: 'disc', kind: 'subject', token: 'id_token', audiences: [HOST], trust: { issuer, discovery: true, algorithms: ['RS256'] }, claims: {} })
    const o = local({ keys })
    // never fetched successfully: 20 sequential and 20 concurrent refusals, one fetch
    for (let i = 0; i < 20; i++) expect((await refusal(verifyForeignToken(signed(idClaims(issuer)), r, o))).code).toBe('JWKS_UNAVAILABLE')
    const all = await Promise.allSettled(Array.from({ length: 20 }, () => verifyForeignToken(signed(idClaims(issuer)), r, o)))
    expect(all.every((x) => x.status === 'rejected' && MandateError.is(x.reason) && x.reason.code === 'JWKS_UNAVAILABLE')).toBe(true)
    expect(idp.hits(doc)).toBe(1)
    // the document comes back
    idp.route(doc, { body: { issuer, jwks_uri: `${issuer}/jwks` } })
    t += 600
    expect((await verifyForeignToken(signed(idClaims(issuer)), r, o)).rule.id).toBe('disc')
    expect(idp.hits(doc)).toBe(2)
    // and fails again once it has aged out: the last good jwks_uri (and its keys) still serve
    idp.route(doc, { status: 500, body: 'down' })
    t += 2000
    expect((await verifyForeignToken(signed(idClaims(issuer)), r, o)).rule.id).toBe('disc')
    expect((await verifyForeignToken(signed(idClaims(issuer)), r, o)).rule.id).toBe('disc')
    expect(idp.hits(doc)).toBe(3)
    expect(idp.hits(`${p}/jwks`)).toBe(1)
    t += 20_000 // stale too long: fail closed
    expect((await refusal(verifyForeignToken(signed(idClaims(issuer)), r, o))).code).toBe('JWKS_UNAVAILABLE')
  })

  it('the probe\'s shape: a slow 500 JWKS, 50 concurrent then 20 sequential lookups, and 20 discovery lookups', async () => {
    const slow = await new FakeIdp().start()
    try {
      slow.route('/jwks', { status: 500, body: 'x', delayMs: 200 })
      slow.route('/.well-known/openid-configuration', { status: 500, body: 'x', delayMs: 200 })
      const keys = new IssuerKeys({ cooldownMs: 30_000 })
      const jw = keys.resolver({ issuer: 'https://x.example', jwksUri: `${slow.base}/jwks`, algorithms: ['RS256'] })
      const disc = keys.resolver({ issuer: slow.base, discovery: true, algorithms: ['RS256'] })
      const h = { alg: 'RS256', kid: 'a' }
      const token = { payload: {}, signature: '', protected: '' } as unknown as Parameters<typeof jw>[1]
      const results = await Promise.allSettled(Array.from({ length: 50 }, async () => jw(h, token)))
      expect(results.every((x) => x.status === 'rejected' && MandateError.is(x.reason) && x.reason.code === 'JWKS_UNAVAILABLE')).toBe(true)
      expect(slow.hits('/jwks')).toBe(1)
      const t0 = Date.now()
      for (let i = 0; i < 20; i++) await expect(jw(h, token)).rejects.toMatchObject({ code: 'JWKS_UNAVAILABLE' })
      expect(slow.hits('/jwks')).toBe(1)
      // answered at once, not after 20 fetches of 200 ms
      expect(Date.now() - t0).toBeLessThan(1000)
      for (let i = 0; i < 20; i++) await expect(disc(h, token)).rejects.toMatchObject({ code: 'JWKS_UNAVAILABLE' })
      expect(slow.hits('/.well-known/openid-configuration')).toBe(1)
    } finally {
      await slow.close()
    }
  })

  it('failureCooldownMs and staleMaxAgeMs are checked like the other durations', () => {
    expect(() => new IssuerKeys({ failureCooldownMs: -1 })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }))
    expect(() => new IssuerKeys({ staleMaxAgeMs: 0.5 })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }))
  })
})

describe('5. a remote set listing the same key twice under one kid', () => {
  it('verifies that kid\'s tokens (and tokens without kid); two different keys under one kid stay ambiguous (kid)', async () => {
    expect((await subjectGrant(signed(idClaims(DUP_ISS)))).status).toBe(200)
    expect((await subjectGrant(signed(idClaims(DUP_ISS), {}))).status).toBe(200)
    const other = rsaKey(2048, 'rs-1')
    const p = `/ambiguous-${randomUUID().slice(0, 8)}`
    idp.route(`${p}/jwks`, { body: { keys: [strong.jwk, other.jwk] } })
    const r = rule({ id: 'amb', kind: 'subject', token: 'id_token', audiences: [HOST], trust: { issuer: ISS, jwksUri: `${idp.base}${p}/jwks`, algorithms: ['RS256'] }, claims: {} })
    expect(await checkForeignToken(signed(idClaims(ISS)), r, local())).toMatchObject({ refused: { reason: 'kid' } })
  })
})

describe('the baseline still works', () => {
  it('an ES256 ID token and a workload token over HTTP', async () => {
    const es256 = await new SignJWT(idClaims(ISS)).setProtectedHeader({ alg: 'ES256', kid: 'es-1' }).sign(es.key)
    expect((await subjectGrant(es256)).status).toBe(200)
    const wl = signed({ iss: GHA, sub: 'repo:acme/app:ref:refs/heads/main', aud: srv.authority.issuer, repository: 'acme/app', iat: now(), exp: now() + 300, jti: randomUUID() })
    expect((await workloadGrant(wl)).status).toBe(200)
  })
})

describe('federation.keys options reach the key sets', () => {
  it('failureCooldownSeconds and staleMaxAgeSeconds are accepted in range, refused out of range or unknown', async () => {
    const ok = await createAuthority({ issuer: 'http://127.0.0.1:7401', federation: { keys: { failureCooldownSeconds: 1, staleMaxAgeSeconds: 0, cooldownSeconds: 5, cacheMaxAgeSeconds: 60, timeoutMs: 1000 } } })
    await ok.close()
    for (const keys of [{ failureCooldownSeconds: -1 }, { failureCooldownSeconds: 3601 }, { staleMaxAgeSeconds: 1.5 }, { staleMaxAgeSeconds: '60' }, { negativeCacheSeconds: 1 }]) {
      const err = await createAuthority({ issuer: 'http://127.0.0.1:7401', federation: { keys: keys as never } }).then(async (a) => {
        await a.close()
        return undefined
      }, (e: unknown) => e)
      expect(MandateError.is(err) && err.code, JSON.stringify(keys)).toBe('CONFIG_INVALID')
    }
  })
})
