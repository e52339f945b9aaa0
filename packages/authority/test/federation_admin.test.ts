/**
 * The federation admin API over real HTTP (an Authority server on 127.0.0.1 with a SQLite file):
 * `GET/POST /admin/federation/rules`, `DELETE /admin/federation/rules/:id` and
 * `POST /admin/federation/test`, which explains a real signed foreign token (ES256, the rule's
 * inline JWKS) without issuing anything or echoing the token. Admins only; changes are audited.
 */
import { createClientAssertion, Ed25519Key, randomId } from '@mandate/core'
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAuthorityServer, openSqliteStore, type AuthorityServer } from '../src/index.js'
import type { FederationRule } from '../src/federation/types.js'
import { AUD, tempDir, TOOLS } from './helpers.js'

const ISSUER = 'https://ci.example.test'
let server: AuthorityServer
let admin: Ed25519Key
let agent: Ed25519Key
let signer: CryptoKey
let publicJwk: JWK
const tmp = tempDir()

function workloadRule(id: string, repository: string, over: Partial<FederationRule> = {}): FederationRule {
  return {
    id, kind: 'agent', token: 'workload', description: `deploys of ${repository}`,
    trust: { issuer: ISSUER, jwks: { keys: [{ ...(publicJwk as Record<string, string>), kid: 'ci-1', alg: 'ES256', use: 'sig' }] }, algorithms: ['ES256'] },
    claims: { repository: { exact: repository }, ref: { glob: 'refs/heads/*' } },
    agent: { name: 'ci:{repository}', lifetime: 600 },
    template: { audiences: [AUD], tools: TOOLS, maxLifetime: 300 },
    ...over,
  }
}

/** A workload token as the CI platform would sign it, for this Authority. */
async function workloadToken(claims: Record<string, string>, aud = server.url): Promise<string> {
  return new SignJWT({ ...claims })
    .setProtectedHeader({ alg: 'ES256', kid: 'ci-1', typ: 'JWT' })
    .setIssuer(ISSUER).setSubject(`repo:${claims.repository}:ref:${claims.ref}`).setAudience(aud)
    .setIssuedAt().setExpirationTime('5m').setJti(randomId())
    .sign(signer)
}

const headers = (k: Ed25519Key) => ({ authorization: `MandateAssertion ${createClientAssertion(k, { clientId: k.did, audience: server.url })}`, 'content-type': 'application/json' })
const api = (path: string, init: { method?: string; body?: unknown; as?: Ed25519Key | null } = {}) => fetch(`${server.url}/admin/federation${path}`, {
  method: init.method ?? 'GET',
  headers: init.as === null ? { 'content-type': 'application/json' } : headers(init.as ?? admin),
  ...(init.body !== undefined ? { body: typeof init.body === 'string' ? init.body : JSON.stringify(init.body) } : {}),
})

beforeAll(async () => {
  const pair = await generateKeyPair('ES256', { extractable: true })
  signer = pair.privateKey
  publicJwk = await exportJWK(pair.publicKey)
  server = await createAuthorityServer({
    port: 0, hostname: '127.0.0.1',
    authority: { store: openSqliteStore(`${tmp.dir}/authority.db`), federation: { rules: [workloadRule('from-config', 'acme/infra')] } },
  })
  admin = Ed25519Key.generate()
  agent = Ed25519Key.generate()
  await server.authority.registerAgent({ did: admin.did, name: 'ops', role: 'admin' })
  await server.authority.registerAgent({ did: agent.did, name: 'agent' })
})
afterAll(async () => {
  await server.close()
  tmp.cleanup()
})

describe('federation rules over the admin API', () => {
  it('lists the config rule; adds a rule (201, audited with who, no token or key material in the record); refuses a duplicate id', async () => {
    const before = await (await api('/rules')).json() as { rules: Array<Record<string, unknown>> }
    expect(before.rules).toEqual([{ ...workloadRule('from-config', 'acme/infra'), source: 'config' }])
    const res = await api('/rules', { method: 'POST', body: workloadRule('deploy', 'acme/deploy') })
    expect(res.status).toBe(201)
    expect(res.headers.get('cache-control')).toBe('no-store')
    const added = await res.json() as Record<string, unknown>
    expect(added).toMatchObject({ id: 'deploy', source: 'store', createdBy: admin.did })
    expect(typeof added.createdAt).toBe('number')
    const listed = await (await api('/rules')).json() as { rules: Array<{ id: string; source: string; createdAt?: number }> }
    expect(listed.rules.map((r) => `${r.source}:${r.id}`)).toEqual(['config:from-config', 'store:deploy'])
    const [rec] = await server.authority.audit.query({ type: 'federation.rule.added' })
    expect(rec?.fields).toEqual({ rule: 'deploy', issuer: ISSUER, kind: 'agent', token: 'workload', by: admin.did })
    const dup = await api('/rules', { method: 'POST', body: workloadRule('deploy', 'acme/other') })
    expect(dup.status).toBe(400)
    expect(await dup.json()).toMatchObject({ mandate_code: 'INVALID_REQUEST', error_description: expect.stringContaining('already exists') })
    const shadow = await api('/rules', { method: 'POST', body: workloadRule('from-config', 'acme/other') })
    expect(shadow.status).toBe(400)
    expect(await shadow.json()).toMatchObject({ error_description: expect.stringContaining('config file') })
  })

  it('refuses an invalid rule (400 naming the problem), a body that is not JSON, and non-admins (403) or no credential (401)', async () => {
    const bad = await api('/rules', { method: 'POST', body: { ...workloadRule('bad-alg', 'acme/x'), trust: { issuer: ISSUER, jwksUri: 'https://ci.example.test/jwks', algorithms: ['HS256'] } } })
    expect(bad.status).toBe(400)
    expect(await bad.json()).toMatchObject({ error: 'invalid_request' })
    expect((await api('/rules', { method: 'POST', body: '{"id": "x",' })).status).toBe(400)
    const asAgent = await api('/rules', { method: 'POST', body: workloadRule('by-agent', 'acme/x'), as: agent })
    expect(asAgent.status).toBe(403)
    expect(await asAgent.json()).toMatchObject({ mandate_code: 'ACCESS_DENIED' })
    expect((await api('/rules', { as: agent })).status).toBe(403)
    expect((await api('/rules', { as: null })).status).toBe(401)
    expect((await api('/rules/deploy', { method: 'DELETE', as: null })).status).toBe(401)
    expect((await api('/test', { method: 'POST', body: { token: 'x.y.z' }, as: agent })).status).toBe(403)
    expect((await api('/rules?x=1')).status).toBe(400)
    const ids = (await server.authority.federation.list()).map((l) => l.rule.id)
    expect(ids).not.toContain('bad-alg')
    expect(ids).not.toContain('by-agent')
  })

  it('removes a stored rule (204, audited), then 404; a config rule cannot be removed (400: edit the config file)', async () => {
    expect((await api('/rules', { method: 'POST', body: workloadRule('temp', 'acme/temp') })).status).toBe(201)
    const del = await api('/rules/temp', { method: 'DELETE' })
    expect(del.status).toBe(204)
    expect(await del.text()).toBe('')
    const again = await api('/rules/temp', { method: 'DELETE' })
    expect(again.status).toBe(404)
    expect(await again.json()).toMatchObject({ mandate_code: 'NOT_FOUND' })
    const cfg = await api('/rules/from-config', { method: 'DELETE' })
    expect(cfg.status).toBe(400)
    expect(await cfg.json()).toMatchObject({ mandate_code: 'INVALID_REQUEST', error_description: expect.stringContaining('edit the config file') })
    const removed = await server.authority.audit.query({ type: 'federation.rule.removed' })
    expect(removed.map((r) => r.fields)).toEqual([{ rule: 'temp', issuer: ISSUER, kind: 'agent', by: admin.did }])
    expect((await (await api('/rules')).json() as { rules: Array<{ id: string }> }).rules.map((r) => r.id)).toEqual(['from-config', 'deploy'])
  })
})

describe('POST /admin/federation/test', () => {
  it('names the rule a real token matches and why every other rule does not; issues nothing, uses up nothing, never echoes the token', async () => {
    const token = await workloadToken({ repository: 'acme/deploy', ref: 'refs/heads/main' })
    const mandates = await server.authority.store.countMandates()
    const agents = (await server.authority.listAgents()).length
    const res = await api('/test', { method: 'POST', body: { token } })
    expect(res.status).toBe(200)
    const text = await res.text()
    expect(text).not.toContain(token)
    expect(text).not.toContain(token.split('.')[2]!)
    const e = JSON.parse(text) as { issuer: string; matched?: string; verdicts: Array<{ rule: string; source: string; matched: boolean; reasons: string[] }> }
    expect(e.issuer).toBe(ISSUER)
    expect(e.matched).toBe('deploy')
    const byRule = new Map(e.verdicts.map((v) => [v.rule, v]))
    expect(byRule.get('deploy')).toMatchObject({ source: 'store', matched: true, reasons: [] })
    expect(byRule.get('from-config')).toMatchObject({ source: 'config', matched: false })
    expect(byRule.get('from-config')!.reasons.join(' ')).toMatch(/repository/)
    // explaining is not redeeming: the same token explains again, and nothing was issued or registered
    expect((await (await api('/test', { method: 'POST', body: { token } })).json() as { matched?: string }).matched).toBe('deploy')
    expect(await server.authority.store.countMandates()).toBe(mandates)
    expect((await server.authority.listAgents()).length).toBe(agents)
  })

  it('a token no rule accepts: no match, a reason per rule; a malformed body is refused', async () => {
    const other = await workloadToken({ repository: 'evil/fork', ref: 'refs/heads/main' })
    const e = await (await api('/test', { method: 'POST', body: { token: other } })).json() as { matched?: string; verdicts: Array<{ matched: boolean; reasons: string[] }> }
    expect(e.matched).toBeUndefined()
    expect(e.verdicts.length).toBe(2)
    for (const v of e.verdicts) {
      expect(v.matched).toBe(false)
      expect(v.reasons.length).toBeGreaterThan(0)
    }
    const garbage = await (await api('/test', { method: 'POST', body: { token: 'not-a-jwt' } })).json() as { issuer: string; matched?: string }
    expect(garbage).toMatchObject({ issuer: '' })
    expect(garbage.matched).toBeUndefined()
    expect((await api('/test', { method: 'POST', body: { token: 'a.b.c', extra: 1 } })).status).toBe(400)
    expect((await api('/test', { method: 'POST', body: { token: 42 } })).status).toBe(400)
    expect((await api('/test', { method: 'POST', body: { token: 'x'.repeat(16 * 1024 + 1) } })).status).toBe(400)
    expect((await api('/test', { method: 'POST', body: { token: other, nonce: 7 } })).status).toBe(400)
  })
})
