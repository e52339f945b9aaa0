/**
 * Issued is not verified: the dashboard's calls view (API and page script) shows a call credential
 * that no guard reported as "issued, not presented", a guard-reported call as "verified by <guard>",
 * a refusal as refused, and an agent's report about itself as a self-report. Against a real
 * in-process Authority and the dashboard's own routes (session cookie required).
 */
import { decodeMandateUnverified, Ed25519Key, type MandateClaims } from '@mandate/core'
import { beforeAll, describe, expect, it } from 'vitest'
import { createAuthority, createAuthorityApp, installDashboard, type Authority, type DashboardHandle } from '../src/index.js'
import { loadDashboardBundle } from '../src/dashboard/assets/bundle.js'
import { AUD, TOOLS } from './helpers.js'

const ISSUER = 'http://127.0.0.1:7498'
let authority: Authority
let app: ReturnType<typeof createAuthorityApp>['app']
let dashboard: DashboardHandle
const admin = Ed25519Key.generate()
const agent = Ed25519Key.generate()
const grantor = Ed25519Key.generate()
const guard = Ed25519Key.generate()
const jti = { unpresented: '', verified: '', refused: '', self: '' }

interface Call { status: string; label: string; jti?: string; tool?: string; by?: { name: string }; outcome?: string; code?: string }

beforeAll(async () => {
  authority = await createAuthority({ issuer: ISSUER })
  app = createAuthorityApp(authority).app
  dashboard = installDashboard(app, authority)
  await authority.registerAgent({ did: admin.did, name: 'root', role: 'admin' })
  await authority.registerAgent({ did: agent.did, name: 'worker' })
  await authority.registerAgent({ did: grantor.did, name: 'host', role: 'grantor' })
  await authority.registerAgent({ did: guard.did, name: 'billing-guard', role: 'resource' })
  const { token, claims } = await authority.grant({ grantor: grantor.did, subject: 'alice', agent: agent.did, audiences: [AUD], tools: TOOLS })
  const client = authority.clientFor(agent)
  const issue = async (amount: number) => {
    const r = await client.callCredential({ mandate: token, audience: AUD, tool: 'billing.get', arguments: { amount } })
    if (r.status !== 'issued') throw new Error('expected a credential')
    return decodeMandateUnverified(r.token).payload as unknown as MandateClaims
  }
  const report = (c: MandateClaims, decision: 'allowed' | 'refused', reporter: string, extra: Record<string, string> = {}) =>
    authority.reportCall({ mandateId: c.jti, txn: c.txn, tool: 'billing.get', audience: AUD, argumentsDigest: c.call?.args ?? 'x', decision, actorChain: [agent.did], subject: 'alice', ...extra }, { reporter })
  const unpresented = await issue(1)
  const verified = await issue(2)
  const refused = await issue(3)
  const self = await issue(4)
  await report(verified, 'allowed', guard.did, { outcome: 'success' })
  await report(refused, 'refused', guard.did, { errorCode: 'ARGUMENTS_MISMATCH' })
  await report(self, 'allowed', agent.did, { outcome: 'success' })
  // the Authority refuses a call outside the grant: no credential at all
  await expect(client.callCredential({ mandate: token, audience: AUD, tool: 'email.send', arguments: {} })).rejects.toMatchObject({ code: expect.any(String) })
  Object.assign(jti, { unpresented: unpresented.jti, verified: verified.jti, refused: refused.jti, self: self.jti })
  expect(claims.jti).toBeTruthy()
})

async function session(): Promise<string> {
  const res = await app.request(`${ISSUER}${dashboard.createLoginPath({ did: admin.did, name: 'root' }).path}`, { headers: { 'sec-fetch-site': 'none' } })
  expect(res.status).toBe(303)
  return (res.headers.get('set-cookie') ?? '').split(';')[0] as string
}

describe('dashboard calls view: issued is not verified', () => {
  it('the calls API joins each credential with the guard reports naming it', async () => {
    const cookie = await session()
    const res = await app.request(`${ISSUER}/dashboard/api/calls`, { headers: { cookie } })
    expect(res.status).toBe(200)
    // the paged API's CallView (docs/authority-api.md): outcome, and the guard that decided it
    const { items } = (await res.json()) as { items: Array<{ id: string; tool: string; outcome: string; outcomeBy?: { name?: string }; code?: string }> }
    const of = (id: string) => items.find((c) => c.id === id)
    expect(of(jti.unpresented)).toMatchObject({ outcome: 'not_presented' })
    expect(of(jti.unpresented)?.outcomeBy).toBeUndefined()
    expect(of(jti.verified)).toMatchObject({ outcome: 'verified', outcomeBy: { name: 'billing-guard' } })
    expect(of(jti.refused)).toMatchObject({ outcome: 'refused', outcomeBy: { name: 'billing-guard' }, code: 'ARGUMENTS_MISMATCH' })
    // an agent's report about itself is not a verification
    expect(of(jti.self)).toMatchObject({ outcome: 'not_presented' })
    expect(of(jti.self)?.outcomeBy).toBeUndefined()
    expect(items.find((c) => c.tool === 'email.send')).toMatchObject({ outcome: 'refused' })
    // one row per credential: a report never adds a second "call" for the same credential
    expect(items.filter((c) => c.id === jti.verified)).toHaveLength(1)
    expect(items.filter((c) => c.outcome === 'verified')).toHaveLength(1)
  })

  it('the page snapshot carries the same view; both need a session', async () => {
    const cookie = await session()
    const state = (await (await app.request(`${ISSUER}/dashboard/api/state`, { headers: { cookie } })).json()) as { calls: Call[] }
    expect(state.calls.find((c) => c.jti === jti.unpresented)).toMatchObject({ status: 'issued', label: 'issued, not presented' })
    for (const path of ['/dashboard/api/calls', '/dashboard/api/state']) expect((await app.request(`${ISSUER}${path}`)).status).toBe(401)
    expect((await app.request(`${ISSUER}/dashboard/api/calls`, { headers: { cookie: 'mandate_dashboard=forged' } })).status).toBe(401)
  })

  it('the page script renders the server view and no longer labels minted credentials as calls itself', async () => {
    const bundle = loadDashboardBundle()
    if (!bundle) throw new Error('the dashboard bundle is not built (vitest globalSetup builds it)')
    const res = await app.request(`${ISSUER}/dashboard/assets/${bundle.js.name}`)
    const js = await res.text()
    expect(js).toBe(bundle.js.body)
    expect(js).toContain('/calls')
    expect(js).toContain('issued, not presented')
    expect(js).not.toMatch(/decision: 'issued'/)
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'")
  })
})
