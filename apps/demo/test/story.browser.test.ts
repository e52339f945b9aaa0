/**
 * The whole demo story with the dashboard open in a real browser: the delegation tree, every call,
 * the pending approval, the refusal and the revocation appear live (server-sent events).
 */
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { installDashboard } from '@mandate/authority'
import { Narrator } from '../src/narrator.js'
import { runStory } from '../src/story.js'
import { browserAvailable, launch, RESULTS_DIR } from './support/browser.js'

describe.skipIf(!browserAvailable)('the demo story, watched in the dashboard', () => {
  let browser: Browser
  beforeAll(async () => {
    browser = await launch()
  })
  afterAll(async () => {
    await browser?.close()
  })

  it('shows the delegation tree, the approval, the refusal and the revocation as they happen', async () => {
    const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } })
    let page: Page | undefined
    let sawApproval: Promise<boolean> = Promise.resolve(false)
    let narration = ''
    await runStory({
      narrator: new Narrator((s) => void (narration += s)),
      interactive: false,
      stateDir: await mkdtemp(join(tmpdir(), 'mandate-story-')),
      autoApproveDelayMs: 2500,
      installDashboard: (app, authority, options) => installDashboard(app, authority, { ...options, pollMs: 100 }),
      hooks: {
        async ready({ dashboardLogin }) {
          if (!dashboardLogin) throw new Error('the dashboard is not installed')
          page = await context.newPage()
          await page.goto(dashboardLogin)
          await page.locator('#live.ok').waitFor({ timeout: 10_000 })
          const p = page
          sawApproval = p
            .locator('[data-approval-card]')
            .waitFor({ timeout: 20_000 })
            .then(async () => {
              await p.screenshot({ path: join(RESULTS_DIR, 'story-pending-approval.png'), fullPage: true })
              return true
            })
        },
        async finished() {
          const p = page as Page
          const origin = new URL(p.url()).origin
          await p.locator('#verify.ok').waitFor({ timeout: 10_000 })
          // the task was revoked: the tasks view lists it under "revoked"
          await p.goto(`${origin}/dashboard/tasks?status=revoked`)
          const taskLink = p.locator('#view tbody a[data-task]').first()
          await taskLink.waitFor({ timeout: 10_000 })
          await taskLink.click()
          // tree: root (orchestrator) → delegation (billing-agent) → calls
          const root = p.locator('ul.tree.root > li.node').first()
          await root.waitFor({ timeout: 10_000 })
          expect(await root.locator(':scope > .node-head .actor strong').first().textContent()).toBe('orchestrator')
          const delegated = root.locator('li.node.kind-mandate').first()
          expect(await delegated.locator(':scope > .node-head .actor strong').first().textContent()).toBe('billing-agent')
          expect(await root.locator('li.node.kind-call').count()).toBeGreaterThanOrEqual(5)
          expect(await p.locator('[data-task-status="revoked"]').count()).toBe(1)
          const chain = (await delegated.locator('li.node.kind-call ol.chain').first().textContent()) ?? ''
          expect(chain).toMatch(/orchestrator.*billing-agent/)
          await p.screenshot({ path: join(RESULTS_DIR, 'story-task.png'), fullPage: true })
          // every call, with what became of it
          await p.getByRole('link', { name: 'Calls', exact: true }).click()
          await p.locator('#view tbody tr').first().waitFor({ timeout: 10_000 })
          await expect.poll(async () => (await p.textContent('#view tbody')) ?? '', { timeout: 10_000 }).toContain('REVOKED')
          const calls = (await p.textContent('#view tbody')) ?? ''
          for (const t of ['billing.get_invoice', 'tickets.open', 'billing.refund', 'NARROWING_TOOL', 'REVOKED']) expect(calls).toContain(t)
          await p.getByRole('link', { name: /^Approvals/ }).click()
          await p.getByText('No pending approvals.').waitFor({ timeout: 10_000 })
          await p.goto(`${origin}/dashboard/audit`)
          await p.locator('#audit tbody tr[data-seq]').first().waitFor({ timeout: 10_000 })
          await p.screenshot({ path: join(RESULTS_DIR, 'story-dashboard.png'), fullPage: true })
        },
      },
    })
    expect(await sawApproval).toBe(true)
    expect(narration).toContain('audit log verified')
    await context.close()
  })
})
