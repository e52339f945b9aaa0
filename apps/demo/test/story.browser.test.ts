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
          await p.locator('#revocations td.revoked', { hasText: 'task' }).waitFor({ timeout: 10_000 })
          await p.locator('#calls td', { hasText: 'REVOKED' }).first().waitFor({ timeout: 10_000 })
          await p.locator('#verify.ok').waitFor({ timeout: 10_000 })
          // tree: root (orchestrator) → delegation (billing-agent) → calls
          const root = p.locator('#tasks .node.root')
          expect(await root.locator(':scope > .head strong').first().textContent()).toBe('orchestrator')
          expect(await root.locator('.node:not(.call) > .head strong').first().textContent()).toBe('billing-agent')
          expect(await root.locator('.node.call').count()).toBeGreaterThanOrEqual(5)
          const calls = (await p.textContent('#calls')) ?? ''
          for (const t of ['billing.get_invoice', 'tickets.open', 'billing.refund', 'NARROWING_TOOL', 'REVOKED']) expect(calls).toContain(t)
          expect(calls).toContain('alice@example.com → orchestrator → billing-agent → billing.refund')
          expect(await p.locator('#approvals [data-approval-card]').count()).toBe(0)
          await p.screenshot({ path: join(RESULTS_DIR, 'story-dashboard.png'), fullPage: true })
        },
      },
    })
    expect(await sawApproval).toBe(true)
    expect(narration).toContain('audit log verified')
    await context.close()
  })
})
