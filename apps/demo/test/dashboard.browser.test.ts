/**
 * The dashboard in a real browser (Chromium via playwright-core) against a real Authority over HTTP:
 * sign in with a one-time code, filter, open a task page (delegation tree with states and the full
 * actor chain), approve a waiting call with a reason (and find the reason in the audit view), revoke
 * a task through the confirmation dialog and see it reflected live in a second window, deep-link to
 * an approval, run one flow with the keyboard only, and lay out at 375 px. Screenshots go to
 * apps/demo/test-results/ (gitignored test artifacts).
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { createAuthorityServer, installDashboard, type AuthorityServer, type DashboardHandle } from '@mandate/authority'
import { createHttpAuthorityClient, Ed25519Key } from '@mandate/core'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { browserAvailable, launch, RESULTS_DIR } from './support/browser.js'

const BILLING = 'https://billing.example.test/api'
const shot = (name: string) => join(RESULTS_DIR, `dashboard-${name}.png`)

describe.skipIf(!browserAvailable)('dashboard in a real browser', () => {
  let server: AuthorityServer
  let dashboard: DashboardHandle
  let browser: Browser
  const grantor = Ed25519Key.generate()
  const admin = Ed25519Key.generate()
  const approver = Ed25519Key.generate()
  const orchestrator = Ed25519Key.generate()
  const billing = Ed25519Key.generate()

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
    await a.registerAgent({ did: admin.did, name: 'root-admin', role: 'admin' })
    await a.registerAgent({ did: approver.did, name: 'bob (approver)', role: 'approver' })
    await a.registerAgent({ did: orchestrator.did, name: 'orchestrator', role: 'agent', owner: 'alice' })
    await a.registerAgent({ did: billing.did, name: 'billing-agent', role: 'agent', owner: 'alice' })
    browser = await launch()
  })

  afterAll(async () => {
    await browser?.close()
    dashboard?.close()
    await server?.close()
  })

  /** A task for `subject`: orchestrator → billing-agent, one invoice read (issued, never presented) and a refund waiting for approval. */
  async function scenario(subject: string, purpose: string, amount = 120) {
    const { token } = await server.authority.grant({
      grantor: grantor.did, subject, agent: orchestrator.did, purpose,
      audiences: [BILLING], tools: [{ type: 'tool_access', tools: ['billing.*'] }], expiresIn: 600, maxDepth: 1,
    })
    const orch = createHttpAuthorityClient({ issuer: server.url, key: orchestrator })
    const sub = await orch.delegate({ mandate: token, to: billing.did, tools: [{ type: 'tool_access', tools: ['billing.get_invoice', 'billing.refund'] }] })
    const client = createHttpAuthorityClient({ issuer: server.url, key: billing })
    const read = await client.callCredential({ mandate: sub.token, audience: BILLING, tool: 'billing.get_invoice', arguments: { invoice: 'INV-1001' } })
    expect(read.status).toBe('issued')
    const args = { invoice: 'INV-1001', amount }
    const first = await client.callCredential({ mandate: sub.token, audience: BILLING, tool: 'billing.refund', arguments: args })
    if (first.status !== 'approval_required') throw new Error('expected the refund to need an approval')
    const waiting = client.waitForApproval(first.approvalId, { timeoutMs: 60_000 }).then(async (outcome) => {
      if (outcome.status !== 'approved') return { outcome, issued: undefined }
      const issued = await client.callCredential({ mandate: sub.token, audience: BILLING, tool: 'billing.refund', arguments: args, approvalId: first.approvalId })
      return { outcome, issued }
    })
    // scenarios nobody decides leave their waiter pending until the server closes: ignore that
    waiting.catch(() => undefined)
    const txn = (await server.authority.approvals.get(first.approvalId)) as { txn?: string }
    return { token, sub: sub.token, approvalId: first.approvalId, waiting, txn: txn.txn ?? '' }
  }

  async function signIn(who: { did: string; name: string }, viewport = { width: 1400, height: 1000 }, next?: string): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ viewport })
    const page = await context.newPage()
    const errors: string[] = []
    page.on('pageerror', (e) => errors.push(String(e)))
    page.on('console', (m) => void (m.type() === 'error' && errors.push(m.text())))
    ;(page as Page & { errors?: string[] }).errors = errors
    const login = dashboard.createLoginPath(who)
    await page.goto(`${server.url}${login.path}${next ? `&next=${encodeURIComponent(next)}` : ''}`)
    await page.locator('#live.ok').waitFor({ timeout: 10_000 })
    return { context, page }
  }
  /** Text whose colour against its nearest opaque background is below WCAG AA (4.5:1), by element. */
  const lowContrast = (page: Page) =>
    page.evaluate(() => {
      const rgb = (s: string) => (s.match(/[\d.]+/g) ?? []).map(Number)
      const lum = ([r, g, b]: number[]) => {
        const c = [r!, g!, b!].map((v) => v / 255).map((v) => (v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4))
        return 0.2126 * c[0]! + 0.7152 * c[1]! + 0.0722 * c[2]!
      }
      const bgOf = (el: Element | null): number[] => {
        for (let e = el; e; e = e.parentElement) {
          const c = rgb(getComputedStyle(e).backgroundColor)
          if (c.length >= 3 && (c.length === 3 || c[3]! > 0.5)) return c
        }
        return [255, 255, 255]
      }
      const bad: string[] = []
      for (const el of Array.from(document.querySelectorAll('body *'))) {
        const own = Array.from(el.childNodes).some((n) => n.nodeType === 3 && n.textContent?.trim())
        if (!own || (el as HTMLElement).offsetParent === null || el.closest('.sr-only, [disabled]')) continue
        const a = lum(rgb(getComputedStyle(el).color))
        const b = lum(bgOf(el))
        const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)
        if (ratio < 4.5) bad.push(`${el.tagName.toLowerCase()}.${el.className}: ${ratio.toFixed(2)}`)
      }
      return bad
    })
  const cspErrors = (page: Page) => ((page as Page & { errors?: string[] }).errors ?? []).filter((e) => /Content Security Policy|TrustedHTML|Trusted Type/i.test(e))

  it('a login link followed from another site signs in only from the continue page, which names the identity; a sibling origin\'s own post is refused', async () => {
    const login = dashboard.createLoginPath({ did: approver.did, name: 'bob (approver)' })
    const target = `${server.url}${login.path}&next=${encodeURIComponent('/dashboard/approvals')}`
    // another origin (another port on this host): a page linking to the login URL, and one posting it itself
    const other = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' })
      if (req.url === '/post') {
        const code = new URL(target).searchParams.get('code') ?? ''
        return void res.end(`<form id="f" method="post" action="${server.url}/dashboard/login"><input name="code" value="${code}"></form><script>document.getElementById('f').submit()</script>`)
      }
      res.end(`<a id="go" href="${target}">open the dashboard</a>`)
    })
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r))
    const otherUrl = `http://127.0.0.1:${(other.address() as AddressInfo).port}`
    try {
      // the sibling origin submitting the code itself: refused (its Origin), the code unspent
      const forger = await browser.newContext()
      const fp = await forger.newPage()
      await fp.goto(`${otherUrl}/post`)
      await fp.waitForURL(`${server.url}/dashboard/login`)
      expect(await fp.textContent('body')).toContain('not sent from this dashboard')
      await forger.close()
      // the user following the link: the continue page says whom it signs in as, and its button signs in
      const context = await browser.newContext()
      const page = await context.newPage()
      await page.goto(`${otherUrl}/`)
      await page.click('#go')
      await page.getByText('It signs this browser in as').waitFor()
      expect(await page.textContent('main')).toContain('bob (approver)')
      expect(await context.cookies()).toEqual([])
      await page.getByRole('button', { name: 'Continue to sign in' }).click()
      await page.locator('#live.ok').waitFor({ timeout: 10_000 })
      expect(new URL(page.url()).pathname).toBe('/dashboard/approvals')
      expect((await context.cookies()).map((c) => c.name)).toEqual(['mandate_dashboard'])
      await context.close()
    } finally {
      await new Promise((r) => other.close(r))
    }
  })

  it('refuses anonymous visitors; serves a hashed, immutable bundle under a strict CSP', async () => {
    const page = await browser.newPage()
    const res = await page.goto(`${server.url}/dashboard/approvals/anything`)
    expect(res?.status()).toBe(401)
    expect(await page.textContent('body')).toContain('mandate dashboard login')
    const csp = res?.headers()['content-security-policy'] ?? ''
    for (const d of ["script-src 'self'", "style-src 'self'", "default-src 'none'", "require-trusted-types-for 'script'", "frame-ancestors 'none'"]) expect(csp).toContain(d)
    expect(csp).not.toContain('unsafe')
    const css = await page.locator('link[rel=stylesheet]').getAttribute('href')
    expect(css).toMatch(/^\/dashboard\/assets\/app\.[A-Z0-9]+\.css$/)
    const asset = await fetch(`${server.url}${css}`)
    expect(asset.headers.get('cache-control')).toContain('immutable')
    expect((await fetch(`${server.url}/dashboard/assets/app.js`)).status).toBe(404)
    expect((await fetch(`${server.url}/dashboard/api/overview`)).status).toBe(401)
    expect((await fetch(`${server.url}/dashboard/api/approvals/abc/approve`, { method: 'POST' })).status).toBe(401)
    expect((await page.goto(`${server.url}/dashboard/login?code=AAAAAAAAAAAAAAAAAAAAAA`))?.status()).toBe(401)
    await page.close()
  })

  it('signs in, filters tasks, opens a task page with the tree and the full actor chain', async () => {
    const s = await scenario('alice@example.com', 'triage billing anomalies')
    await scenario('carol@example.com', 'carol’s unrelated task', 40)
    const { context, page } = await signIn({ did: admin.did, name: 'root-admin' })
    expect(new URL(page.url()).pathname).toBe('/dashboard/')
    expect(await context.cookies()).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'mandate_dashboard', httpOnly: true, sameSite: 'Strict' })]))
    await page.locator('#verify.ok').waitFor({ timeout: 10_000 })
    await page.locator('[data-approval-card]').first().waitFor({ timeout: 10_000 })
    expect(await page.content()).not.toContain(s.token)
    await page.screenshot({ path: shot('overview'), fullPage: true })
    expect(await lowContrast(page)).toEqual([])

    await page.getByRole('link', { name: 'Tasks', exact: true }).click()
    await page.getByLabel('Subject').fill('alice@example.com')
    await page.getByRole('button', { name: 'Apply filters' }).click()
    await page.waitForURL(/\/dashboard\/tasks\?subject=alice%40example\.com/)
    const rows = page.locator('#view tbody tr')
    await rows.first().waitFor()
    await expect.poll(() => rows.count()).toBe(1)
    expect(await page.textContent('#view tbody')).toContain('triage billing anomalies')
    expect(await page.textContent('#view tbody')).not.toContain('carol')
    await page.screenshot({ path: shot('tasks-filtered'), fullPage: true })

    await page.getByRole('link', { name: 'triage billing anomalies' }).click()
    await page.waitForURL(/\/dashboard\/tasks\/[^/?]+$/)
    const tree = page.locator('ul.tree.root')
    await tree.waitFor()
    const root = tree.locator(':scope > li.node').first()
    expect(await root.locator(':scope > .node-head .actor strong').first().textContent()).toBe('orchestrator')
    const delegated = root.locator('li.node.kind-mandate').first()
    expect(await delegated.locator(':scope > .node-head .actor strong').first().textContent()).toBe('billing-agent')
    // the never-presented read and the waiting refund are told apart from verified calls
    await page.locator('li.node[data-state="not_presented"]').first().waitFor()
    await page.locator('li.node[data-state="pending_approval"]').first().waitFor()
    const chain = (await delegated.locator('li.node.kind-call ol.chain').first().textContent()) ?? ''
    expect(chain).toContain('orchestrator')
    expect(chain).toContain('billing-agent')
    expect(chain).toContain(billing.did.slice(0, 14))
    // the task's audit records, with dates
    const audit = (await page.textContent('table.timeline')) ?? ''
    expect(audit).toMatch(/\d{4}-\d{2}-\d{2}/)
    expect(audit).toContain('grant')
    await page.screenshot({ path: shot('task'), fullPage: true })
    expect(await lowContrast(page)).toEqual([])
    // revoke the delegated mandate: the node and its calls show it
    await delegated.locator(':scope > .node-head').getByRole('button', { name: 'Revoke mandate…' }).click()
    const dialog = page.getByRole('dialog')
    expect(await dialog.textContent()).toContain('every mandate and call credential derived from it')
    await dialog.getByLabel(/Reason/).fill('billing-agent misbehaved')
    await dialog.getByRole('button', { name: 'Revoke', exact: true }).click()
    await page.locator('ul.tree.root li.node.kind-mandate[data-state="revoked"]').first().waitFor({ timeout: 10_000 })
    expect(await page.locator('ul.tree.root > li.node').first().getAttribute('data-state')).not.toBe('revoked')
    expect(cspErrors(page)).toEqual([])
    await context.close()
  })

  it('approves a waiting call with a reason from a deep link; the reason is in the audit view', async () => {
    const s = await scenario('dave@example.com', 'refund dave', 75)
    const deep = `/dashboard/approvals/${s.approvalId}`
    // the sign-in link carries the deep link (as a notification's would)
    const { context, page } = await signIn({ did: approver.did, name: 'bob (approver)' }, undefined, deep)
    expect(new URL(page.url()).pathname).toBe(deep)
    const card = page.locator(`[data-approval-card="${s.approvalId}"]`)
    await card.waitFor({ timeout: 10_000 })
    const text = (await card.textContent()) ?? ''
    for (const t of ['billing.refund', 'INV-1001', 'orchestrator', 'billing-agent', 'dave@example.com']) expect(text).toContain(t)

    await card.getByRole('button', { name: 'Approve…' }).click()
    const dialog = page.getByRole('dialog')
    await dialog.waitFor()
    expect(await dialog.textContent()).toContain('may run once')
    // the reason is required: confirming without one keeps the dialog open
    await dialog.getByRole('button', { name: 'Approve', exact: true }).click()
    expect(await dialog.isVisible()).toBe(true)
    await dialog.getByLabel(/Reason/).fill('customer called, refund confirmed by phone (ticket 4711)')
    await page.screenshot({ path: shot('approve-dialog') })
    await dialog.getByRole('button', { name: 'Approve', exact: true }).click()
    const { outcome, issued } = await s.waiting
    expect(outcome).toEqual({ status: 'approved', approver: approver.did })
    expect(issued?.status).toBe('issued')
    await card.locator('.state-approved').waitFor({ timeout: 10_000 })
    expect(await card.textContent()).toContain('ticket 4711')

    await page.getByRole('link', { name: 'Audit', exact: true }).click()
    await page.getByLabel('Event type').fill('approval.approved')
    await page.getByRole('button', { name: 'Apply filters' }).click()
    await page.locator('#audit tbody tr[data-seq]').first().waitFor()
    await expect.poll(async () => (await page.textContent('#audit')) ?? '').toContain('ticket 4711')
    await page.screenshot({ path: shot('audit-approval-reason'), fullPage: true })
    expect(cspErrors(page)).toEqual([])
    await context.close()
  })

  it('an approver sees the arguments that will run: hiding characters as escapes, mixed scripts flagged, in the card and the dialog', async () => {
    const { token } = await server.authority.grant({
      grantor: grantor.did, subject: 'frank@example.com', agent: orchestrator.did, purpose: 'refund frank',
      audiences: [BILLING], tools: [{ type: 'tool_access', tools: ['billing.*'] }], expiresIn: 600, maxDepth: 1,
    })
    const client = createHttpAuthorityClient({ issuer: server.url, key: orchestrator })
    // a right-to-left override would draw the IBAN reversed; the Cyrillic "а" makes a look-alike domain
    // a Hebrew letter would make the browser draw "12 א 34 56" as "12 56 34 א"; a secret-sounding name must not hide where the refund goes
    const args = { invoice: 'INV-2002', amount: 10, iban: '\u202E0987-6543-21', to: 'ops@ex\u0430mple.com', to_account: '12 \u05D0 34 56', refund_to_token: 'acct-of-mallory', recipients: Array.from({ length: 230 }, (_, i) => `r${i}@example.com`) }
    const first = await client.callCredential({ mandate: token, audience: BILLING, tool: 'billing.refund', arguments: args })
    if (first.status !== 'approval_required') throw new Error('expected the refund to need an approval')
    const { context, page } = await signIn({ did: approver.did, name: 'bob (approver)' }, undefined, `/dashboard/approvals/${first.approvalId}`)
    const card = page.locator(`[data-approval-card="${first.approvalId}"]`)
    await card.waitFor({ timeout: 10_000 })
    const text = (await card.textContent()) ?? ''
    expect(text).toContain('\\u202e0987-6543-21')
    expect(text).not.toContain('\u202E')
    expect(text).toMatch(/Look twice: .*\/to mixes letters of several scripts \(Latin \+ Cyrillic\)/)
    expect(text).toContain('/to_account holds right-to-left letters')
    expect(text).toContain('"refund_to_token": "acct-of-mallory"')
    expect(text).toMatch(/Named like secrets: \/refund_to_token/)
    // drawn in stored order: each character of the account to the right of the one before it
    const lefts = await card.locator('pre.args').evaluate((pre) => {
      const node = Array.from(pre.childNodes).find((n) => n.nodeType === Node.TEXT_NODE && (n.textContent ?? '').includes('12 \u05D0 34 56')) as Text
      const start = (node.textContent ?? '').indexOf('12 \u05D0 34 56')
      return Array.from({ length: 10 }, (_, i) => {
        const r = document.createRange()
        r.setStart(node, start + i)
        r.setEnd(node, start + i + 1)
        return r.getBoundingClientRect().left
      })
    })
    for (let i = 1; i < lefts.length; i++) expect(lefts[i], `character ${i} of the account`).toBeGreaterThan(lefts[i - 1] as number)
    // nothing cut short: the 230th recipient is on the card
    expect(text).toContain('r229@example.com')
    await card.getByRole('button', { name: 'Deny…' }).click()
    const dialog = page.getByRole('dialog')
    await dialog.waitFor()
    const said = (await dialog.textContent()) ?? ''
    expect(said).toContain('\\u202e0987-6543-21')
    // long arguments: the dialog opens at its top (title and first arguments in view), the reason
    // focused; Shift+Tab reaches the arguments box (second dashboard probe)
    const layout = await dialog.evaluate((d) => {
      const title = d.querySelector('h2') as HTMLElement
      return { titleTop: title.getBoundingClientRect().top, dialogTop: d.getBoundingClientRect().top, scrolled: d.scrollTop, focused: document.activeElement?.tagName }
    })
    expect(layout.scrolled).toBe(0)
    expect(layout.titleTop).toBeGreaterThanOrEqual(layout.dialogTop)
    expect(layout.focused).toBe('TEXTAREA')
    await page.keyboard.press('Shift+Tab')
    expect(await page.evaluate(() => document.activeElement?.className)).toBe('args')
    expect(said).toContain('approving binds the arguments with digest')
    await page.screenshot({ path: shot('approval-arguments') })
    await page.keyboard.press('Escape')
    expect(cspErrors(page)).toEqual([])
    await context.close()
  })

  it('the look-twice list puts look-alike names first and says how many it leaves out (review)', async () => {
    const { token } = await server.authority.grant({
      grantor: grantor.did, subject: 'heidi@example.com', agent: orchestrator.did, purpose: 'padded arguments',
      audiences: [BILLING], tools: [{ type: 'tool_access', tools: ['billing.*'] }], expiresIn: 600, maxDepth: 1,
    })
    const client = createHttpAuthorityClient({ issuer: server.url, key: orchestrator })
    // 30 harmless non-ASCII names first, the look-alike last
    const args: Record<string, unknown> = {}
    for (let i = 0; i < 30; i++) args[`caf\u00e9_${i}`] = i
    args.amount = 10
    args['\u{1D68A}mount'] = 100000
    const first = await client.callCredential({ mandate: token, audience: BILLING, tool: 'billing.refund', arguments: args })
    if (first.status !== 'approval_required') throw new Error('expected an approval')
    const { context, page } = await signIn({ did: approver.did, name: 'bob (approver)' }, undefined, `/dashboard/approvals/${first.approvalId}`)
    const note = page.locator(`[data-approval-card="${first.approvalId}"] .warning`).first()
    await note.waitFor({ timeout: 10_000 })
    const text = (await note.textContent()) ?? ''
    expect(text).toMatch(/^Look twice: \/\u{1D68A}mount and \/amount are different members whose names read alike/u)
    expect(text).toMatch(/and \d+ more\.$/)
    await context.close()
  })

  it('a pending approval of a revoked task says so and offers only Deny (second dashboard probe)', async () => {
    const s = await scenario('grace@example.com', 'grace’s refund, then revoked', 35)
    await server.authority.revoke({ txn: s.txn }, { reason: 'task abandoned' })
    const { context, page } = await signIn({ did: approver.did, name: 'bob (approver)' }, undefined, `/dashboard/approvals/${s.approvalId}`)
    const card = page.locator(`[data-approval-card="${s.approvalId}"]`)
    await card.waitFor({ timeout: 10_000 })
    expect(await card.textContent()).toContain('this call can only be denied')
    expect(await card.getByRole('button', { name: 'Approve…' }).count()).toBe(0)
    expect(await card.getByRole('button', { name: 'Deny…' }).count()).toBe(1)
    await context.close()
  })

  it('revokes a task through the confirmation dialog; a second window sees it live', async () => {
    const s = await scenario('erin@example.com', 'erin’s task to revoke', 30)
    const watcher = await signIn({ did: approver.did, name: 'bob (approver)' })
    await watcher.page.goto(`${server.url}/dashboard/tasks?subject=erin%40example.com`)
    await watcher.page.locator('#view tbody tr').first().waitFor()
    expect(await watcher.page.locator('#view tbody .state-active').count()).toBe(1)

    const { context, page } = await signIn({ did: admin.did, name: 'root-admin' })
    await page.goto(`${server.url}/dashboard/tasks/${encodeURIComponent(s.txn)}`)
    await page.getByRole('button', { name: 'Revoke task…' }).click()
    const dialog = page.getByRole('dialog')
    await dialog.waitFor()
    expect(await dialog.textContent()).toContain(s.txn)
    await dialog.getByLabel(/Reason/).fill('suspected prompt injection in the ticket text')
    await dialog.getByRole('button', { name: 'Revoke', exact: true }).click()
    await dialog.waitFor({ state: 'detached' })
    await page.locator('[data-task-status="revoked"]').waitFor({ timeout: 10_000 })
    // the other window follows the event stream and redraws without a reload
    await watcher.page.locator('#view tbody .state-revoked').waitFor({ timeout: 10_000 })
    await watcher.page.screenshot({ path: shot('task-revoked-live'), fullPage: true })
    const pending = await server.authority.approvals.get(s.approvalId)
    expect(pending).toBeTruthy()
    await watcher.context.close()
    await context.close()
  })

  it('keyboard only: navigate to approvals, open Deny, Escape, then deny with a reason', async () => {
    const s = await scenario('frank@example.com', 'frank keyboard', 55)
    const { context, page } = await signIn({ did: approver.did, name: 'bob (approver)' })
    const focused = () => page.evaluate(() => {
      const el = document.activeElement as HTMLElement | null
      return { text: el?.textContent?.trim() ?? '', tag: el?.tagName ?? '', card: el?.closest('[data-approval-card]')?.getAttribute('data-approval-card') ?? '' }
    })
    async function tabTo(pred: (f: { text: string; tag: string; card: string }) => boolean, max = 200): Promise<void> {
      for (let i = 0; i < max; i++) {
        await page.keyboard.press('Tab')
        if (pred(await focused())) return
      }
      throw new Error('focus never reached the target')
    }
    await tabTo((f) => f.tag === 'A' && f.text.startsWith('Approvals'))
    // focus is drawn visibly
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement as Element).outlineStyle)
    expect(outline).not.toBe('none')
    await page.keyboard.press('Enter')
    await page.waitForURL(/\/dashboard\/approvals$/)
    expect((await focused()).text).toBe('Approvals')
    await page.locator(`[data-approval-card="${s.approvalId}"]`).waitFor()
    await tabTo((f) => f.card === s.approvalId && f.text === 'Deny…')
    await page.keyboard.press('Enter')
    await page.getByRole('dialog').waitFor()
    expect((await focused()).tag).toBe('TEXTAREA')
    // focus stays in the dialog
    for (let i = 0; i < 6; i++) {
      await page.keyboard.press('Tab')
      expect(await page.evaluate(() => !!document.activeElement?.closest('dialog'))).toBe(true)
    }
    // a live event redraws the card behind the dialog; closing it still returns focus to Deny…
    const oldCard = await page.locator(`[data-approval-card="${s.approvalId}"]`).elementHandle()
    await server.authority.registerAgent({ did: Ed25519Key.generate().did, name: 'newcomer', role: 'agent' })
    await page.waitForFunction((el) => !el?.isConnected, oldCard, { timeout: 10_000 })
    await page.keyboard.press('Escape')
    await page.getByRole('dialog').waitFor({ state: 'detached' })
    expect((await focused()).text).toBe('Deny…')
    expect((await focused()).card).toBe(s.approvalId)
    await page.keyboard.press('Enter')
    await page.getByRole('dialog').waitFor()
    await page.keyboard.type('not within policy for this customer')
    await tabTo((f) => f.tag === 'BUTTON' && f.text === 'Deny', 6)
    await page.keyboard.press('Enter')
    const { outcome } = await s.waiting
    expect(outcome.status).toBe('denied')
    await page.locator(`[data-approval-card="${s.approvalId}"]`).waitFor({ state: 'detached', timeout: 10_000 })
    await context.close()
  })

  it('calls: the outcome filter; issued-not-presented is drawn apart from verified', async () => {
    await scenario('hank@example.com', 'calls view', 15)
    const { context, page } = await signIn({ did: admin.did, name: 'root-admin' })
    await page.goto(`${server.url}/dashboard/calls`)
    await page.getByLabel('Outcome').selectOption('not_presented')
    await page.getByRole('button', { name: 'Apply filters' }).click()
    await page.waitForURL(/outcome=not_presented/)
    const rows = page.locator('#view tbody tr.call-row')
    await rows.first().waitFor()
    const outcomes = await page.locator('#view tbody [data-outcome]').evaluateAll((els) => els.map((e) => [e.getAttribute('data-outcome'), e.textContent?.trim()]))
    expect(outcomes.length).toBeGreaterThan(0)
    for (const [o, text] of outcomes) {
      expect(o).toBe('not_presented')
      expect(text).toContain('issued, not presented')
      expect(text).not.toContain('verified')
    }
    expect(await page.locator('#view tbody tr.outcome-verified').count()).toBe(0)
    await context.close()
  })

  it('agents: disable and enable with a reason; revoke an agent', async () => {
    const temp = Ed25519Key.generate()
    await server.authority.registerAgent({ did: temp.did, name: 'temp-agent', role: 'agent' })
    const { context, page } = await signIn({ did: admin.did, name: 'root-admin' })
    await page.goto(`${server.url}/dashboard/agents?q=temp-agent`)
    const row = page.locator('#view tbody tr', { has: page.locator(`[data-agent="${temp.did}"]`) })
    await row.waitFor()
    await row.getByRole('button', { name: 'Disable…' }).click()
    let dialog = page.getByRole('dialog')
    await dialog.getByLabel(/Reason/).fill('key may have leaked')
    await dialog.getByRole('button', { name: 'Disable', exact: true }).click()
    await row.locator('.state-disabled').waitFor({ timeout: 10_000 })
    expect(await row.textContent()).toContain('key may have leaked')
    await row.getByRole('button', { name: 'Enable…' }).click()
    dialog = page.getByRole('dialog')
    await dialog.getByLabel(/Reason/).fill('key rotated, false alarm')
    await dialog.getByRole('button', { name: 'Enable', exact: true }).click()
    await row.locator('.state-enabled').waitFor({ timeout: 10_000 })
    await row.getByRole('button', { name: 'Revoke…' }).click()
    dialog = page.getByRole('dialog')
    expect(await dialog.textContent()).toContain(temp.did.slice(0, 14))
    await dialog.getByLabel(/Reason/).fill('decommissioned')
    await dialog.getByRole('button', { name: 'Revoke', exact: true }).click()
    await row.locator('.state-revoked').waitFor({ timeout: 10_000 })
    await page.screenshot({ path: shot('agents'), fullPage: true })
    await context.close()
  })

  it('audit: pages with a cursor in the URL (Next, Back, First)', async () => {
    const { context, page } = await signIn({ did: admin.did, name: 'root-admin' })
    await page.goto(`${server.url}/dashboard/audit?limit=3`)
    const seqs = () => page.locator('#audit tbody tr[data-seq]').evaluateAll((rows) => rows.map((r) => Number(r.getAttribute('data-seq'))))
    await page.locator('#audit tbody tr[data-seq]').first().waitFor()
    const first = await seqs()
    expect(first).toHaveLength(3)
    await page.getByRole('link', { name: 'Next page »' }).click()
    await page.waitForURL(/cursor=/)
    await expect.poll(async () => (await seqs()).join(',')).not.toBe(first.join(','))
    const second = await seqs()
    expect(second.length).toBeGreaterThan(0)
    // newest first: the next page holds only older records
    expect(Math.max(...second)).toBeLessThan(Math.min(...first))
    await page.goBack()
    await expect.poll(async () => (await seqs()).join(',')).toBe(first.join(','))
    await page.goForward()
    await page.getByRole('link', { name: '« First page' }).click()
    await expect.poll(async () => (await seqs()).join(',')).toBe(first.join(','))
    await context.close()
  })

  it('Sign out ends the session at the Authority: the old cookie no longer opens the dashboard', async () => {
    const { context, page } = await signIn({ did: approver.did, name: 'bob (approver)' })
    const cookie = (await context.cookies()).find((k) => k.path === '/dashboard')
    expect(cookie).toBeDefined()
    await page.getByRole('button', { name: 'Sign out' }).click()
    // the page is already at /dashboard/, so waiting for that URL proves nothing: wait for the
    // sign-in page itself (a locator retries across the reload)
    await page.locator('main', { hasText: 'login link' }).waitFor({ timeout: 15_000 })
    expect(page.url()).toBe(`${server.url}/dashboard/`)
    const replay = await fetch(`${server.url}/dashboard/api/overview`, { headers: { cookie: `${cookie?.name}=${cookie?.value}` } })
    expect(replay.status).toBe(401)
    await context.close()
  })

  it('an approver disabled while the dashboard is open is signed out live', async () => {
    const temp = Ed25519Key.generate()
    await server.authority.registerAgent({ did: temp.did, name: 'temp-approver', role: 'approver' })
    const victim = await signIn({ did: temp.did, name: 'temp-approver' })
    const { context, page } = await signIn({ did: admin.did, name: 'root-admin' })
    await page.goto(`${server.url}/dashboard/agents?q=temp-approver`)
    const row = page.locator('#view tbody tr', { has: page.locator(`[data-agent="${temp.did}"]`) })
    await row.getByRole('button', { name: 'Disable…' }).click()
    const dialog = page.getByRole('dialog')
    await dialog.getByLabel(/Reason/).fill('left the company')
    await dialog.getByRole('button', { name: 'Disable', exact: true }).click()
    await victim.page.locator('#live', { hasText: 'signed out' }).waitFor({ timeout: 15_000 })
    expect(await victim.page.textContent('#view')).toContain('Your session has ended')
    expect((await victim.page.reload())?.status()).toBe(401)
    await victim.context.close()
    await context.close()
  })

  it('draws audit data as text: markup in a purpose never becomes elements; innerHTML is blocked by Trusted Types', async () => {
    const evil = '<img src=x onerror="window.__pwned=1"><b>bold</b>'
    const s = await scenario('mallory@example.com', evil, 10)
    const { context, page } = await signIn({ did: admin.did, name: 'root-admin' })
    await page.goto(`${server.url}/dashboard/tasks/${encodeURIComponent(s.txn)}`)
    await page.locator('ul.tree.root').waitFor()
    expect(await page.textContent('#view-title')).toContain(evil)
    expect(await page.locator('#view img, #view b').count()).toBe(0)
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined()
    const sink = await page.evaluate(() => {
      try {
        document.body.innerHTML = '<b>x</b>'
        return 'assigned'
      } catch {
        return 'blocked'
      }
    })
    expect(sink).toBe('blocked')
    await context.close()
  })

  it('lays out at 375 px without horizontal scrolling', async () => {
    const s = await scenario('gina@example.com', 'a task viewed on a phone', 20)
    const { context, page } = await signIn({ did: admin.did, name: 'root-admin' }, { width: 375, height: 812 })
    await page.locator('[data-approval-card]').first().waitFor()
    // the widest element that sticks out of the viewport, named, so a failure says what to fix
    const overflow = () =>
      page.evaluate(() => {
        const width = document.documentElement.clientWidth
        let worst = ''
        for (const el of Array.from(document.querySelectorAll('body *'))) {
          const r = el.getBoundingClientRect()
          if (r.right > width + 1 && !el.closest('.sr-only')) worst = `${el.tagName.toLowerCase()}.${el.className} (${Math.round(r.right)}px)`
        }
        return document.documentElement.scrollWidth > width ? worst || `scrollWidth ${document.documentElement.scrollWidth}` : ''
      })
    await page.screenshot({ path: shot('375-overview'), fullPage: true })
    expect(await overflow()).toBe('')
    await page.goto(`${server.url}/dashboard/tasks/${encodeURIComponent(s.txn)}`)
    await page.locator('ul.tree.root').waitFor()
    await page.screenshot({ path: shot('375-task'), fullPage: true })
    expect(await overflow()).toBe('')
    await page.goto(`${server.url}/dashboard/calls`)
    await page.locator('#view tbody tr').first().waitFor()
    await page.screenshot({ path: shot('375-calls'), fullPage: true })
    expect(await overflow()).toBe('')
    await context.close()
  })
})
