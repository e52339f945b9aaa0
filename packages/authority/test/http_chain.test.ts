/**
 * Independent clients over real HTTP on 127.0.0.1: oauth4webapi (discovery, task grant, token
 * exchange with private_key_jwt + DPoP, introspection, revocation) and the `dpop` package for
 * proofs; a core Guard with createRevocationStatusClient against the server.
 */
import { createGuard, createProof, createRevocationStatusClient, decodeMandateUnverified, type Ed25519Key } from '@mandate/core'
import { generateProof } from 'dpop'
import * as oauth from 'oauth4webapi'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAuthorityServer, openSqliteStore, type AuthorityServer } from '../src/index.js'
import { AUD, AUD2, principal, tempDir, TOOLS, type Principal } from './helpers.js'

const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
const AT = 'urn:ietf:params:oauth:token-type:access_token'
const CALL = 'urn:mandate:token-type:call-credential'


let server: AuthorityServer
let as: oauth.AuthorizationServer
let grantor: Principal, a: Principal, b: Principal, rs: Principal
const tmp = tempDir()
const insecure = { [oauth.allowInsecureRequests]: true } as const

beforeAll(async () => {
  server = await createAuthorityServer({ port: 0, hostname: '127.0.0.1', authority: { store: openSqliteStore(`${tmp.dir}/authority.db`) } })
  ;[grantor, a, b, rs] = await Promise.all([principal(), principal(), principal(), principal()])
  await server.authority.registerAgent({ did: grantor.key.did, name: 'host-app', role: 'grantor' })
  await server.authority.registerAgent({ did: a.key.did, name: 'agent-a' })
  await server.authority.registerAgent({ did: b.key.did, name: 'agent-b' })
  await server.authority.registerAgent({ did: rs.key.did, name: 'billing-api', role: 'resource' })
  const issuer = new URL(server.url)
  as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { ...insecure, algorithm: 'oauth2' }))
})
afterAll(async () => {
  await server.close()
  tmp.cleanup()
})

async function taskGrant(): Promise<string> {
  const res = await oauth.genericTokenEndpointRequest(as, grantor.client, grantor.auth, 'urn:mandate:grant-type:task', [
    ['subject', 'alice@example.com'], ['agent', a.key.did], ['purpose', 'triage billing anomalies'],
    ['resource', AUD], ['resource', AUD2], ['scope', 'billing:read'], ['authorization_details', JSON.stringify(TOOLS)],
    ['expires_in', '3600'], ['max_depth', '2'], ['budget', JSON.stringify({ amount: 100, unit: 'USD' })], ['max_uses', '50'],
  ], insecure)
  return (await oauth.processGenericTokenEndpointResponse(as, grantor.client, res)).access_token
}

/** A's delegation via oauth4webapi with its own DPoP handle. */
function delegateRaw(from: Principal, subject: string, to: string, extra: string[][] = []): Promise<Response> {
  return oauth.genericTokenEndpointRequest(as, from.client, from.auth, EXCHANGE, [
    ['subject_token', subject], ['subject_token_type', AT], ['requested_actor', to], ...extra,
  ], { ...insecure, DPoP: oauth.DPoP(from.client, from.pair) })
}

/** B's call credential via oauth4webapi, with a proof from the `dpop` package (alg Ed25519). */
async function callRaw(from: Principal, subject: string, tool: string, args: unknown, extra: string[][] = []): Promise<Response> {
  const proof = await generateProof(from.pair as never, as.token_endpoint as string, 'POST')
  return oauth.genericTokenEndpointRequest(as, from.client, from.auth, EXCHANGE, [
    ['subject_token', subject], ['subject_token_type', AT], ['requested_token_type', CALL], ['resource', AUD], ['tool', tool], ['tool_arguments', JSON.stringify(args)], ...extra,
  ], { ...insecure, headers: { dpop: proof } })
}

describe('Authority over HTTP with independent clients', () => {
  it('serves RFC 8414 metadata that oauth4webapi accepts', () => {
    expect(as.issuer).toBe(server.url)
    expect(as.token_endpoint).toBe(`${server.url}/token`)
    expect(as.token_endpoint_auth_methods_supported).toEqual(['private_key_jwt'])
    expect(as.dpop_signing_alg_values_supported).toContain('Ed25519')
    expect(as.revocation_status_endpoint).toBe(`${server.url}/revocation-status`)
  })

  it('chain user → A → B → call credential; introspection shows cnf, act, client_id, scope', async () => {
    const root = await taskGrant()
    const del = await oauth.processGenericTokenEndpointResponse(as, a.client, await delegateRaw(a, root, b.key.did, [['resource', AUD]]))
    expect(del.token_type).toBe('dpop')
    const res = await callRaw(b, del.access_token, 'billing.refund', { amount: 42 })
    const call = await oauth.processGenericTokenEndpointResponse(as, b.client, res)
    expect(res.headers.get('cache-control')).toBe('no-store')
    const claims = decodeMandateUnverified(call.access_token).payload
    expect(claims).toMatchObject({ aud: AUD, sub: 'alice@example.com', client_id: b.key.did, act: { sub: b.key.did, act: { sub: a.key.did } }, call: { tool: 'billing.refund' }, max_uses: 1 })
    expect((claims.exp as number) - (claims.iat as number)).toBeLessThanOrEqual(60)

    const intro = await oauth.processIntrospectionResponse(as, rs.client, await oauth.introspectionRequest(as, rs.client, rs.auth, call.access_token, insecure))
    expect(intro).toMatchObject({ active: true, client_id: b.key.did, scope: 'billing:read', cnf: { jkt: b.key.jkt }, act: { sub: b.key.did, act: { sub: a.key.did } }, token_type: 'DPoP' })
  })

  const widenings: Array<[string, string[][], string, string]> = [
    ['scope', [['scope', 'billing:read billing:write']], 'invalid_scope', 'NARROWING_SCOPE'],
    ['audience', [['resource', 'https://evil.example/api']], 'invalid_target', 'NARROWING_AUDIENCE'],
    ['tool', [['authorization_details', JSON.stringify([{ type: 'tool_access', tools: ['admin.*'], constraints: { amount: { type: 'max', value: 5 } } }])]], 'invalid_grant', 'NARROWING_TOOL'],
    ['constraint', [['authorization_details', JSON.stringify([{ type: 'tool_access', tools: ['billing.refund'], constraints: { amount: { type: 'max', value: 5000 } } }])]], 'invalid_grant', 'NARROWING_CONSTRAINT'],
    ['dropped constraint', [['authorization_details', JSON.stringify([{ type: 'tool_access', tools: ['billing.refund'] }])]], 'invalid_grant', 'NARROWING_CONSTRAINT'],
    ['lifetime', [['expires_in', '7200']], 'invalid_grant', 'NARROWING_TIME'],
    ['depth', [['max_depth', '5']], 'invalid_grant', 'NARROWING_DEPTH'],
    ['budget', [['budget', JSON.stringify({ amount: 1000, unit: 'USD' })]], 'invalid_grant', 'NARROWING_BUDGET'],
    ['budget unit', [['budget', JSON.stringify({ amount: 1, unit: 'EUR' })]], 'invalid_grant', 'NARROWING_BUDGET'],
    ['uses', [['max_uses', '51']], 'invalid_grant', 'NARROWING_BUDGET'],
  ]
  for (const [name, extra, error, code] of widenings) {
    it(`refuses a ${name} widening with ${error} and no side effect`, async () => {
      const root = await taskGrant()
      const before = await server.authority.countMandates()
      const rootJti = decodeMandateUnverified(root).payload.jti as string
      const usesBefore = (await server.authority.store.getMandate(rootJti))?.uses
      const res = await delegateRaw(a, root, b.key.did, extra)
      expect(res.status).toBe(400)
      expect(res.headers.get('cache-control')).toBe('no-store')
      const body = (await res.json()) as Record<string, string>
      expect(body).toMatchObject({ error, mandate_code: code })
      expect(body.error_description).toBeTruthy()
      expect(JSON.stringify(body)).not.toMatch(/at .*\.ts/)
      expect(await server.authority.countMandates()).toBe(before)
      expect((await server.authority.store.getMandate(rootJti))?.uses).toBe(usesBefore)
    })
  }

  it('refuses call-credential widening (tool, argument constraint, lifetime) and single-valued duplicates', async () => {
    const root = await taskGrant()
    const before = await server.authority.countMandates()
    const tool = await callRaw(a, root, 'admin.delete', { amount: 1 })
    expect(await tool.json()).toMatchObject({ error: 'invalid_grant', mandate_code: 'NARROWING_TOOL' })
    const arg = await callRaw(a, root, 'billing.refund', { amount: 501 })
    expect(await arg.json()).toMatchObject({ error: 'invalid_grant', mandate_code: 'NARROWING_CONSTRAINT' })
    const life = await callRaw(a, root, 'billing.refund', { amount: 1 }, [['expires_in', '61']])
    expect(await life.json()).toMatchObject({ error: 'invalid_grant', mandate_code: 'NARROWING_TIME' })
    const dup = await callRaw(a, root, 'billing.refund', { amount: 1 }, [['tool', 'billing.other']])
    expect(dup.status).toBe(400)
    expect(await dup.json()).toMatchObject({ error: 'invalid_request' })
    expect(await server.authority.countMandates()).toBe(before)
  })

  it('refuses without DPoP, with a proof by another key, or with a replayed proof', async () => {
    const root = await taskGrant()
    const noProof = await oauth.genericTokenEndpointRequest(as, a.client, a.auth, EXCHANGE, [['subject_token', root], ['subject_token_type', AT], ['requested_actor', b.key.did]], insecure)
    expect(noProof.status).toBe(400)
    expect(await noProof.json()).toMatchObject({ mandate_code: 'PROOF_MISSING' })
    const other = await generateProof(b.pair as never, as.token_endpoint as string, 'POST')
    const wrongKey = await oauth.genericTokenEndpointRequest(as, a.client, a.auth, EXCHANGE, [['subject_token', root], ['subject_token_type', AT], ['requested_actor', b.key.did]], { ...insecure, headers: { dpop: other } })
    expect(await wrongKey.json()).toMatchObject({ error: 'invalid_dpop_proof', mandate_code: 'PROOF_BINDING_MISMATCH' })
    const proof = await generateProof(a.pair as never, as.token_endpoint as string, 'POST')
    const ok = await oauth.genericTokenEndpointRequest(as, a.client, a.auth, EXCHANGE, [['subject_token', root], ['subject_token_type', AT], ['requested_actor', b.key.did]], { ...insecure, headers: { dpop: proof } })
    expect(ok.status).toBe(200)
    const replay = await oauth.genericTokenEndpointRequest(as, a.client, a.auth, EXCHANGE, [['subject_token', root], ['subject_token_type', AT], ['requested_actor', b.key.did]], { ...insecure, headers: { dpop: proof } })
    expect(await replay.json()).toMatchObject({ error: 'invalid_dpop_proof', mandate_code: 'PROOF_REPLAYED' })
  })

  it('revoking A’s mandate kills B’s next exchange and B’s existing call credential at a Guard polling revocation status', async () => {
    const root = await taskGrant()
    const del = await oauth.processGenericTokenEndpointResponse(as, a.client, await delegateRaw(a, root, b.key.did))
    const creds: string[] = []
    for (let i = 0; i < 2; i++) creds.push((await oauth.processGenericTokenEndpointResponse(as, b.client, await callRaw(b, del.access_token, 'billing.refund', { amount: 7 }))).access_token)
    const status = createRevocationStatusClient(`${server.url}/revocation-status`, { issuer: server.url, intervalMs: 0 })
    const guard = createGuard({ issuer: server.url, jwks: `${server.url}/jwks`, audience: AUD, revocation: status })
    const verify = (cred: string) => guard.verifyToolCall({ mandate: cred, proof: createProof(b.key, { audience: AUD, accessToken: cred, tool: 'billing.refund', arguments: { amount: 7 } }), tool: 'billing.refund', arguments: { amount: 7 } })
    await expect(verify(creds[0] as string)).resolves.toMatchObject({ actorChain: [a.key.did, b.key.did] })

    // A revokes its own mandate with RFC 7009 (oauth4webapi); unknown tokens answer 200 too
    await oauth.processRevocationResponse(await oauth.revocationRequest(as, a.client, a.auth, root, insecure))
    await oauth.processRevocationResponse(await oauth.revocationRequest(as, a.client, a.auth, 'not-a-token', insecure))

    const next = await callRaw(b, del.access_token, 'billing.refund', { amount: 7 })
    expect(next.status).toBe(400)
    expect(await next.json()).toMatchObject({ error: 'invalid_request', mandate_code: 'REVOKED' })
    await expect(verify(creds[1] as string)).rejects.toMatchObject({ code: 'REVOKED' })
    const intro = await oauth.processIntrospectionResponse(as, rs.client, await oauth.introspectionRequest(as, rs.client, rs.auth, del.access_token, insecure))
    expect(intro.active).toBe(false)
    const doc = (await (await fetch(`${server.url}/revocation-status`)).json()) as { mandates: string[]; cursor: string }
    expect(doc.mandates).toContain(decodeMandateUnverified(del.access_token).payload.jti)
    const inc = (await (await fetch(`${server.url}/revocation-status?since=${doc.cursor}`)).json()) as { mandates: string[] }
    expect(inc.mandates).toEqual([])
  })

  it('introspection needs client authentication and hides tokens from unrelated clients', async () => {
    const root = await taskGrant()
    const anon = await fetch(`${server.url}/introspect`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: root }) })
    expect(anon.status).toBe(401)
    const unrelated = await oauth.processIntrospectionResponse(as, grantor.client, await oauth.introspectionRequest(as, grantor.client, grantor.auth, root, insecure))
    expect(unrelated.active).toBe(false)
    const unknown = await oauth.processIntrospectionResponse(as, rs.client, await oauth.introspectionRequest(as, rs.client, rs.auth, 'x.y.z', insecure))
    expect(unknown).toEqual({ active: false })
  })

  it('answers strict errors without stack traces: unsupported grant, bad content type, oversize body, unknown route', async () => {
    const r1 = await oauth.genericTokenEndpointRequest(as, a.client, a.auth, 'password', [['username', 'x']], insecure)
    expect(await r1.json()).toMatchObject({ error: 'unsupported_grant_type' })
    const r2 = await fetch(`${server.url}/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
    expect(await r2.json()).toMatchObject({ error: 'invalid_request' })
    const r3 = await fetch(`${server.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `x=${'a'.repeat(70_000)}` })
    expect(r3.status).toBe(400)
    const r4 = await fetch(`${server.url}/nope`)
    expect(r4.status).toBe(404)
  })
})
