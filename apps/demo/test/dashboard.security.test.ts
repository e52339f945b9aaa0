/**
 * The dashboard's access control without a browser (Hono `app.request` against a real in-process
 * Authority): one-time login codes, session cookie attributes, CSRF and same-origin checks on
 * decisions, identity of the approver, security headers, and that nothing token-like is served.
 */
import { createAuthorityApp, createAuthority, type Authority } from '@mandate/authority'
import { Ed25519Key } from '@mandate/core'
import { beforeEach, describe, expect, it } from 'vitest'
import { installDashboard, type DashboardHandle } from '@mandate/authority'

const ISSUER = 'http://127.0.0.1:7499'
const BILLING = 'https://billing.example.test/api'

describe('dashboard access control', () => {
  let authority: Authority
  let app: ReturnType<typeof createAuthorityApp>['app']
  let dashboard: DashboardHandle
  let clock: number
  const approver = Ed25519Key.generate()
  const agent = Ed25519Key.generate()
  const grantor = Ed25519Key.generate()

  beforeEach(async () => {
    clock = Date.now()
    authority = await createAuthority({ issuer: ISSUER, policy: [{ effect: 'require_approval', on: 'call', tool: 'billing.refund' }] })
    app = createAuthorityApp(authority, {}).app
    dashboard = installDashboard(app, authority, { now: () => clock, loginCodeTtlMs: 60_000 })
    await authority.registerAgent({ did: approver.did, name: 'bob', role: 'approver' })
    await authority.registerAgent({ did: agent.did, name: 'agent', role: 'agent' })
    await authority.registerAgent({ did: grantor.did, name: 'host', role: 'grantor' })
  })

  // a login link as a browser opens it when pasted or typed (Sec-Fetch-Site: none)
  const req = (path: string, init: RequestInit = {}) =>
    app.request(`${ISSUER}${path}`, path.startsWith('/dashboard/login') ? { ...init, headers: { 'sec-fetch-site': 'none', ...(init.headers as Record<string, string> | undefined) } } : init)
  async function login(identity = { did: approver.did, name: 'bob' }): Promise<{ cookie: string; csrf: string }> {
    const res = await req(dashboard.createLoginPath(identity).path)
    expect(res.status).toBe(303)
    const setCookie = res.headers.get('set-cookie') ?? ''
    expect(setCookie).toMatch(/HttpOnly/i)
    expect(setCookie).toMatch(/SameSite=Strict/i)
    expect(setCookie).toMatch(/Path=\/dashboard/)
    const cookie = setCookie.split(';')[0] as string
    const page = await (await req('/dashboard/', { headers: { cookie } })).text()
    const csrf = /name="mandate-csrf" content="([^"]+)"/.exec(page)?.[1]
    if (!csrf) throw new Error('no CSRF token on the page')
    return { cookie, csrf }
  }
  async function pendingApproval(): Promise<string> {
    const { token } = await authority.grant({ grantor: grantor.did, subject: 'alice', agent: agent.did, purpose: 'p', audiences: [BILLING], tools: [{ type: 'tool_access', tools: ['billing.refund'] }], expiresIn: 300, maxDepth: 0 })
    const r = await authority.clientFor(agent).callCredential({ mandate: token, audience: BILLING, tool: 'billing.refund', arguments: { amount: 1 } })
    if (r.status !== 'approval_required') throw new Error('expected approval_required')
    return r.approvalId
  }

  it('login codes are single use and expire', async () => {
    const { path } = dashboard.createLoginPath({ did: approver.did })
    expect((await req(path)).status).toBe(303)
    expect((await req(path)).status).toBe(401)
    const late = dashboard.createLoginPath({ did: approver.did })
    clock += 61_000
    expect((await req(late.path)).status).toBe(401)
    expect((await req('/dashboard/login?code=not-a-code')).status).toBe(401)
  })

  it('serves nothing but the sign-in page without a session, with strict security headers', async () => {
    const page = await req('/dashboard/')
    expect(page.status).toBe(401)
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'")
    expect(page.headers.get('referrer-policy')).toBe('no-referrer')
    expect(page.headers.get('x-frame-options')).toBe('DENY')
    for (const path of ['/dashboard/api/state', '/dashboard/api/events', '/dashboard/api/verify']) expect((await req(path)).status).toBe(401)
    expect((await req('/dashboard/api/state', { headers: { cookie: 'mandate_dashboard=forged-session-id-000000000000000000000000' } })).status).toBe(401)
  })

  it('a decision needs the session, the CSRF token and a same-origin request; it is recorded under the session identity', async () => {
    const id = await pendingApproval()
    const { cookie, csrf } = await login()
    const post = (headers: Record<string, string>) => req(`/dashboard/api/approvals/${id}/approve`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ reason: 'checked with the customer' }) })
    expect((await post({ origin: ISSUER, 'x-csrf-token': csrf })).status).toBe(401) // no cookie
    expect((await post({ cookie, origin: ISSUER })).status).toBe(403) // no CSRF token
    expect((await post({ cookie, origin: ISSUER, 'x-csrf-token': `${csrf}x` })).status).toBe(403)
    expect((await post({ cookie, origin: 'http://evil.example', 'x-csrf-token': csrf })).status).toBe(403)
    expect((await post({ cookie, 'x-csrf-token': csrf })).status).toBe(403) // no Origin, no Sec-Fetch-Site
    const ok = await post({ cookie, origin: ISSUER, 'x-csrf-token': csrf })
    expect(ok.status).toBe(200)
    expect(await authority.approvals.get(id)).toMatchObject({ status: 'approved', decided_by: approver.did })
  })

  it('the requesting agent cannot approve its own call through the dashboard', async () => {
    const id = await pendingApproval()
    // a login link made for the agent: the app shell refuses it (no CSRF token), and so does the API
    const signIn = await req(dashboard.createLoginPath({ did: agent.did, name: 'agent' }).path)
    const cookie = (signIn.headers.get('set-cookie') ?? '').split(';')[0] as string
    const page = await req('/dashboard/', { headers: { cookie } })
    expect(page.status).toBe(401)
    expect(await page.text()).not.toContain('mandate-csrf')
    const res = await req(`/dashboard/api/approvals/${id}/approve`, { method: 'POST', headers: { cookie, origin: ISSUER, 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'mine' }) })
    expect(res.status).toBe(403)
    expect(await authority.approvals.get(id)).toMatchObject({ status: 'pending' })
  })

  it('the state snapshot holds summaries, never tokens', async () => {
    await pendingApproval()
    const { cookie } = await login()
    const text = await (await req('/dashboard/api/state', { headers: { cookie } })).text()
    expect(text).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/)
    const state = JSON.parse(text) as { approvals: { tool: string; status: string }[]; events: { type: string }[]; verification: { ok: boolean } }
    expect(state.approvals).toEqual([expect.objectContaining({ tool: 'billing.refund', status: 'pending' })])
    expect(state.events.map((e) => e.type)).toContain('approval.requested')
    expect(state.verification.ok).toBe(true)
  })
})
