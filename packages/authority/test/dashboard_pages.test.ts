/**
 * The dashboard's pages and assets (Hono `app.request` against a real in-process Authority): the
 * esbuild bundle is served under content-hashed, immutable URLs; the app shell answers every
 * client-side route (deep links) only with a session; the login `next` deep link cannot leave the
 * dashboard; the CSP forbids inline script, inline style, eval and HTML string sinks (Trusted
 * Types); and the bundle itself carries no eval, no Function constructor and no innerHTML.
 */
import { createClientAssertion, Ed25519Key } from '@mandate/core'
import { beforeAll, describe, expect, it } from 'vitest'
import { createAuthority, createAuthorityApp, installDashboard, type DashboardHandle } from '../src/index.js'
import { loadDashboardBundle } from '../src/dashboard/assets/bundle.js'

const ISSUER = 'http://127.0.0.1:7497'
let app: ReturnType<typeof createAuthorityApp>['app']
let authority: Awaited<ReturnType<typeof createAuthority>>
let dashboard: DashboardHandle
const admin = Ed25519Key.generate()
const req = (path: string, init: RequestInit = {}) => app.request(`${ISSUER}${path}`, init)

async function login(next?: string): Promise<{ cookie: string; location: string }> {
  const { path } = dashboard.createLoginPath({ did: admin.did, name: 'root' })
  const res = await req(`${path}${next === undefined ? '' : `&next=${encodeURIComponent(next)}`}`, { headers: { 'sec-fetch-site': 'none' } })
  expect(res.status).toBe(303)
  return { cookie: (res.headers.get('set-cookie') ?? '').split(';')[0] as string, location: res.headers.get('location') ?? '' }
}

beforeAll(async () => {
  authority = await createAuthority({ issuer: ISSUER })
  app = createAuthorityApp(authority).app
  dashboard = installDashboard(app, authority)
  await authority.registerAgent({ did: admin.did, name: 'root', role: 'admin' })
})

describe('dashboard pages and assets', () => {
  it('serves the bundle under its content-hashed name, immutable; nothing else under /assets', async () => {
    const bundle = loadDashboardBundle()
    if (!bundle) throw new Error('bundle not built (the vitest globalSetup builds it)')
    expect(bundle.js.name).toMatch(/^app\.[A-Z0-9]+\.js$/)
    for (const asset of [bundle.js, bundle.css]) {
      const res = await req(`/dashboard/assets/${asset.name}`)
      expect(res.status).toBe(200)
      expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable')
      expect(res.headers.get('x-content-type-options')).toBe('nosniff')
      expect(await res.text()).toBe(asset.body)
    }
    for (const name of ['app.js', 'app.css', 'manifest.json', '..%2Fpackage.json', 'app.AAAAAAAA.js']) expect((await req(`/dashboard/assets/${name}`)).status).toBe(404)
  })

  it('the bundle needs no eval, no Function constructor and never assigns HTML strings', () => {
    const js = loadDashboardBundle()?.js.body ?? ''
    expect(js.length).toBeGreaterThan(1000)
    expect(js).not.toMatch(/\beval\s*\(|new Function\s*\(|\bFunction\s*\(/)
    expect(js).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write/)
  })

  it('answers every client-side route with the app shell, only with a session', async () => {
    const { cookie } = await login()
    const bundle = loadDashboardBundle()!
    for (const route of ['/dashboard', '/dashboard/', '/dashboard/tasks', '/dashboard/tasks/abc', '/dashboard/approvals', '/dashboard/approvals/xyz', '/dashboard/calls', '/dashboard/agents', '/dashboard/audit']) {
      expect((await req(route)).status).toBe(401)
      const res = await req(route, { headers: { cookie } })
      expect(res.status).toBe(200)
      const html = await res.text()
      expect(html).toContain(`<script type="module" src="/dashboard/assets/${bundle.js.name}"></script>`)
      expect(html).toContain(`href="/dashboard/assets/${bundle.css.name}"`)
      expect(html).toMatch(/<meta name="mandate-csrf" content="[A-Za-z0-9_-]+">/)
      // no inline script or style anywhere in the document
      expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>|<style|\sstyle=|\son[a-z]+=/i)
    }
    expect((await req('/dashboard/unknown', { headers: { cookie } })).status).toBe(404)
  })

  it('links its own icon, served from the dashboard (img-src self), so no /favicon.ico 404', async () => {
    const page = await (await req('/dashboard')).text()
    expect(page).toContain('<link rel="icon" href="/dashboard/favicon.svg" type="image/svg+xml">')
    const icon = await req('/dashboard/favicon.svg')
    expect(icon.status).toBe(200)
    expect(icon.headers.get('content-type')).toBe('image/svg+xml')
    expect(await icon.text()).toMatch(/^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/)
  })

  it('a strict CSP: self-only scripts and styles, no inline, Trusted Types required, no framing', async () => {
    const csp = (await req('/dashboard/')).headers.get('content-security-policy') ?? ''
    for (const d of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "require-trusted-types-for 'script'", "trusted-types 'none'"]) expect(csp).toContain(d)
    expect(csp).not.toMatch(/unsafe-|data:|\*/)
  })

  it('the sign-in page names the command that prints a login link', async () => {
    const html = await (await req('/dashboard/approvals/abc')).text()
    expect(html).toContain('mandate dashboard login')
  })

  it('the shell re-admits the principal: a disabled approver\'s open session gets the sign-in page', async () => {
    const approver = Ed25519Key.generate()
    await authority.registerAgent({ did: approver.did, name: 'temp', role: 'approver' })
    const res = await req(dashboard.createLoginPath({ did: approver.did }).path, { headers: { 'sec-fetch-site': 'none' } })
    const cookie = (res.headers.get('set-cookie') ?? '').split(';')[0] as string
    expect((await req('/dashboard/approvals', { headers: { cookie } })).status).toBe(200)
    await authority.disableAgent(approver.did, { reason: 'left' })
    const after = await req('/dashboard/approvals', { headers: { cookie } })
    expect(after.status).toBe(401)
    expect(await after.text()).not.toContain('mandate-csrf')
  })

  it('the shell is only for admins and approvers: an agent given a login link gets no CSRF token', async () => {
    const agent = Ed25519Key.generate()
    await authority.registerAgent({ did: agent.did, name: 'worker', role: 'agent' })
    const res = await req(dashboard.createLoginPath({ did: agent.did }).path, { headers: { 'sec-fetch-site': 'none' } })
    const cookie = (res.headers.get('set-cookie') ?? '').split(';')[0] as string
    const page = await req('/dashboard/', { headers: { cookie } })
    expect(page.status).toBe(401)
    expect(await page.text()).not.toContain('mandate-csrf')
  })

  it('a login link opened from another site, a sibling origin or without Fetch Metadata is not redeemed there: the continue page posts it from this origin (login CSRF)', async () => {
    const sessionSet = (r: Response) => r.headers.getSetCookie().some((c) => c.startsWith('mandate_dashboard='))
    for (const headers of [{ 'sec-fetch-site': 'cross-site' }, { 'sec-fetch-site': 'same-site' }, {}] as Record<string, string>[]) {
      const { path } = dashboard.createLoginPath({ did: admin.did, name: 'root' })
      const page = await req(`${path}&next=${encodeURIComponent('/dashboard/approvals')}`, { headers: { ...headers, cookie: '' } })
      expect(page.status).toBe(200)
      expect(sessionSet(page)).toBe(false)
      // the form's POST must carry this origin's Origin header: no-referrer would make it "null"
      expect(page.headers.get('referrer-policy')).toBe('same-origin')
      const html = await page.text()
      expect(html).toContain('opened from another site')
      expect(html).toContain(`signs this browser in as <strong>root (${admin.did})</strong>`)
      const code = new URL(path, ISSUER).searchParams.get('code') as string
      expect(html).toContain(`<form method="post" action="/dashboard/login"><input type="hidden" name="code" value="${code}"><input type="hidden" name="next" value="/dashboard/approvals">`)
      const post = (h: Record<string, string>) => req('/dashboard/login', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...h }, body: new URLSearchParams({ code, next: '/dashboard/approvals' }).toString() })
      // another site, a sibling origin (another port), no Origin, or Fetch Metadata saying so: refused, the code unspent
      expect((await post({ origin: 'http://evil.example' })).status).toBe(403)
      expect((await post({ origin: ISSUER.replace(/:\d+$/, ':7999') })).status).toBe(403)
      expect((await post({})).status).toBe(403)
      expect((await post({ origin: ISSUER, 'sec-fetch-site': 'same-site' })).status).toBe(403)
      // the click on the continue page itself
      const signed = await post({ origin: ISSUER })
      expect(signed.status).toBe(303)
      expect(signed.headers.get('location')).toBe('/dashboard/approvals')
      expect(sessionSet(signed)).toBe(true)
      expect((await post({ origin: ISSUER })).status).toBe(401) // single use
    }
    // the code was not spent by the continue page: a same-origin navigation signs in at once
    const { path } = dashboard.createLoginPath({ did: admin.did, name: 'root' })
    expect((await req(path, { headers: { 'sec-fetch-site': 'same-origin' } })).status).toBe(303)
  })

  it('the sign-in POST takes a bounded form body and this origin with its scheme (review)', async () => {
    const { path } = dashboard.createLoginPath({ did: admin.did, name: 'root' })
    const code = new URL(path, ISSUER).searchParams.get('code') as string
    const form = { 'content-type': 'application/x-www-form-urlencoded' }
    // another scheme on the same host and port is another origin
    expect((await req('/dashboard/login', { method: 'POST', headers: { ...form, origin: ISSUER.replace('http:', 'https:') }, body: `code=${code}` })).status).toBe(403)
    // a body past the form limit is refused unread, not buffered
    expect((await req('/dashboard/login', { method: 'POST', headers: { ...form, origin: ISSUER }, body: `code=${code}&pad=${'x'.repeat(70_000)}` })).status).toBe(400)
    // not a form
    expect((await req('/dashboard/login', { method: 'POST', headers: { 'content-type': 'text/plain', origin: ISSUER }, body: `code=${code}` })).status).toBe(400)
    // the code was never spent by those
    expect((await req('/dashboard/login', { method: 'POST', headers: { ...form, origin: ISSUER }, body: `code=${code}` })).status).toBe(303)
  })

  it('a request carrying the session cookie twice (one tossed in by a sibling origin) uses no session (second dashboard probe)', async () => {
    const { cookie } = await login()
    const other = await login()
    expect((await req('/dashboard/api/overview', { headers: { cookie } })).status).toBe(200)
    const tossed = await req('/dashboard/api/overview', { headers: { cookie: `${other.cookie}; ${cookie}` } })
    expect(tossed.status).toBe(401)
    // and a login link cannot replace the session it cannot tell apart
    const { path } = dashboard.createLoginPath({ did: admin.did, name: 'root' })
    expect((await req(path, { headers: { 'sec-fetch-site': 'none', cookie: `${other.cookie}; ${cookie}` } })).status).toBe(303)
  })

  it('a login link is built from the issuer, never from the Host header; an https issuer makes the cookie Secure', async () => {
    const assertion = createClientAssertion(admin, { clientId: admin.did, audience: ISSUER })
    const res = await app.request('http://evil.example/dashboard/api/login-codes', { method: 'POST', headers: { authorization: `MandateAssertion ${assertion}` } })
    expect(res.status).toBe(200)
    const { login_url: url } = (await res.json()) as { login_url: string }
    expect(new URL(url).origin).toBe(new URL(ISSUER).origin)
    // TLS ended at a proxy: the request reaches this process over http, the issuer is https
    const tls = await createAuthority({ issuer: 'https://auth.example' })
    const tlsApp = createAuthorityApp(tls).app
    const tlsDashboard = installDashboard(tlsApp, tls)
    await tls.registerAgent({ did: admin.did, name: 'root', role: 'admin' })
    const signed = await tlsApp.request(`http://127.0.0.1${tlsDashboard.createLoginPath({ did: admin.did, name: 'root' }).path}`, { headers: { 'sec-fetch-site': 'none' } })
    expect(signed.status).toBe(303)
    expect(signed.headers.get('set-cookie')).toMatch(/;\s*Secure/i)
    const plain = await app.request(`${ISSUER}${dashboard.createLoginPath({ did: admin.did, name: 'root' }).path}`, { headers: { 'sec-fetch-site': 'none' } })
    expect(plain.headers.get('set-cookie')).not.toMatch(/;\s*Secure/i)
    tlsDashboard.close()
    await tls.close()
  })

  it('login follows a deep link inside the dashboard and nothing else', async () => {
    expect((await login('/dashboard/approvals/AbC_12-x')).location).toBe('/dashboard/approvals/AbC_12-x')
    expect((await login('/dashboard/tasks/t1')).location).toBe('/dashboard/tasks/t1')
    // outside probe: `%2e%2e` passed the check and a browser read it as `..` once redirected
    for (const next of ['https://evil.example/', '//evil.example/dashboard/', '/dashboard//evil.example', '/dashboard/../admin', '/elsewhere', '/dashboard/x?y=<script>', 'javascript:alert(1)', '/dashboard/\\evil', '/dashboard/%2e%2e/probe', '/dashboard/%252e%252e/probe', '/dashboard/.%2e/x']) {
      expect((await login(next)).location).toBe('/dashboard/')
    }
  })
})
