/**
 * The dashboard in a real browser (Chromium via playwright-core): sign in with a one-time link, see
 * the pending approval a waiting call created, click Approve, and watch the waiting call complete.
 */
import { join } from 'node:path'
import { createAuthorityServer, type AuthorityServer } from '@mandate/authority'
import { createHttpAuthorityClient, Ed25519Key } from '@mandate/core'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { installDashboard, type DashboardHandle } from '@mandate/authority'
import { browserAvailable, launch, RESULTS_DIR } from './support/browser.js'

const BILLING = 'https://billing.example.test/api'

describe.skipIf(!browserAvailable)('dashboard in a real browser', () => {
  let server: AuthorityServer
  let dashboard: DashboardHandle
  let browser: Browser
  const grantor = Ed25519Key.generate()
  const approver = Ed25519Key.generate()
  const agent = Ed25519Key.generate()

  beforeAll(async () => {
    server = await createAuthorityServer({
      port: 0,
      authority: { policy: [{ effect: 'require_approval', on: 'call', tool: 'billing.refund' }] },
      extend: (app, authority) => {
        dashboard = installDashboard(app, authority, { pollMs: 200 })
      },
    })
    const a = server.authority
    await a.registerAgent({ did: grantor.did, name: 'host-app', role: 'grantor' })
    await a.registerAgent({ did: approver.did, name: 'bob (approver)', role: 'approver' })
    await a.registerAgent({ did: agent.did, name: 'billing-agent', role: 'agent', owner: 'alice' })
    browser = await launch()
  })

  afterAll(async () => {
    await browser?.close()
    dashboard?.close()
    await server?.close()
  })

  it('refuses anonymous visitors and cross-site or CSRF-less decisions', async () => {
    const page = await browser.newPage()
    const res = await page.goto(`${server.url}/dashboard/`)
    expect(res?.status()).toBe(401)
    expect(await page.textContent('body')).toContain('one-time login URL')
    const api = await fetch(`${server.url}/dashboard/api/state`)
    expect(api.status).toBe(401)
    const post = await fetch(`${server.url}/dashboard/api/approvals/abc/approve`, { method: 'POST' })
    expect(post.status).toBe(401)
    expect((await page.goto(`${server.url}/dashboard/login?code=AAAAAAAAAAAAAAAAAAAAAA`))?.status()).toBe(401)
    await page.close()
  })

  it('shows the pending approval of a waiting call; Approve releases the call', async () => {
    const { token } = await server.authority.grant({
      grantor: grantor.did, subject: 'alice@example.com', agent: agent.did, purpose: 'triage billing anomalies',
      audiences: [BILLING], tools: [{ type: 'tool_access', tools: ['billing.*'], constraints: { amount: { type: 'max', value: 500 } } }], expiresIn: 600, maxDepth: 1,
    })
    const client = createHttpAuthorityClient({ issuer: server.url, key: agent })
    const args = { invoice: 'INV-1001', amount: 120 }
    const first = await client.callCredential({ mandate: token, audience: BILLING, tool: 'billing.refund', arguments: args })
    if (first.status !== 'approval_required') throw new Error('expected the refund to need an approval')
    // the waiting call: resumes by event once a human decides, then gets its credential
    const waitingCall = client.waitForApproval(first.approvalId, { timeoutMs: 30_000 }).then(async (outcome) => {
      if (outcome.status !== 'approved') return { outcome, issued: undefined }
      const issued = await client.callCredential({ mandate: token, audience: BILLING, tool: 'billing.refund', arguments: args, approvalId: first.approvalId })
      return { outcome, issued }
    })

    const context = await browser.newContext({ viewport: { width: 1400, height: 1100 } })
    const page = await context.newPage()
    const login = dashboard.createLoginPath({ did: approver.did, name: 'bob (approver)' })
    await page.goto(`${server.url}${login.path}`)
    expect(new URL(page.url()).pathname).toBe('/dashboard/')
    const cookies = await context.cookies()
    expect(cookies.find((c) => c.name === 'mandate_dashboard')).toMatchObject({ httpOnly: true, sameSite: 'Strict' })
    // the code was single use
    const reuse = await fetch(`${server.url}${login.path}`, { redirect: 'manual' })
    expect(reuse.status).toBe(401)

    const card = page.locator(`[data-approval-card="${first.approvalId}"]`)
    await card.waitFor({ timeout: 10_000 })
    expect(await card.textContent()).toContain('billing.refund')
    expect(await card.textContent()).toContain('INV-1001')
    await page.locator('#live.ok').waitFor({ timeout: 10_000 })
    await page.locator('#verify.ok').waitFor({ timeout: 10_000 })
    expect(await page.textContent('#tasks')).toContain('triage billing anomalies')
    // nothing the page holds is a token
    expect(await page.content()).not.toContain(token)
    await page.screenshot({ path: join(RESULTS_DIR, 'dashboard-pending-approval.png'), fullPage: true })

    // a decision without the CSRF token is refused even with the session cookie
    const noCsrf = await page.evaluate(async (id) => (await fetch(`/dashboard/api/approvals/${id}/approve`, { method: 'POST', body: '{}' })).status, first.approvalId)
    expect(noCsrf).toBe(403)

    await card.locator('button.approve').click()
    const { outcome, issued } = await waitingCall
    expect(outcome).toEqual({ status: 'approved', approver: approver.did })
    expect(issued?.status).toBe('issued')
    await card.waitFor({ state: 'detached', timeout: 10_000 })
    await page.locator('#calls td.issued').first().waitFor({ timeout: 10_000 })
    expect(await page.textContent('#calls')).toContain('billing.refund')
    expect(await page.textContent('#audit')).toContain('approval.approved')
    await page.locator('#verify.ok', { hasText: '7 records' }).waitFor({ timeout: 10_000 })
    const record = (await server.authority.approvals.get(first.approvalId)) as { decided_by?: string }
    expect(record.decided_by).toBe(approver.did)
    await page.screenshot({ path: join(RESULTS_DIR, 'dashboard-approved.png'), fullPage: true })
    await context.close()
  })
})
