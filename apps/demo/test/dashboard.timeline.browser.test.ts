/**
 * The timeline reads for a two-week task as well as for a two-second one (real Chromium): an
 * Authority on an injected clock writes a task's records over fourteen days; its task page groups
 * them under one heading per UTC day, each row keeping its date and time and age, while a run of
 * seconds stays one group with millisecond times and offsets from its first record.
 */
import { join } from 'node:path'
import { createAuthorityServer, installDashboard, type AuthorityServer, type DashboardHandle } from '@mandate/authority'
import { Ed25519Key } from '@mandate/core'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { browserAvailable, launch, RESULTS_DIR } from './support/browser.js'

const AUD = 'https://billing.example.test/api'
const DAY = 86_400_000

describe.skipIf(!browserAvailable)('dashboard timeline across seconds and weeks', () => {
  let server: AuthorityServer
  let dashboard: DashboardHandle
  let browser: Browser
  let clock = Date.now() - 14 * DAY
  const grantor = Ed25519Key.generate()
  const admin = Ed25519Key.generate()
  const agent = Ed25519Key.generate()
  const helper = Ed25519Key.generate()
  let longTxn = ''
  let shortTxn = ''

  beforeAll(async () => {
    server = await createAuthorityServer({
      port: 0,
      // a two-week task needs a mandate that lives that long (the default cap is one day)
      authority: { now: () => clock, maxMandateLifetime: 30 * 86_400 },
      extend: (app, authority) => void (dashboard = installDashboard(app, authority, { pollMs: 200 })),
    })
    const a = server.authority
    await a.registerAgent({ did: grantor.did, name: 'host-app', role: 'grantor' })
    await a.registerAgent({ did: admin.did, name: 'root-admin', role: 'admin' })
    await a.registerAgent({ did: agent.did, name: 'long-runner' })
    await a.registerAgent({ did: helper.did, name: 'helper' })
    const tools = [{ type: 'tool_access' as const, tools: ['billing.*'] }]
    const long = await a.grant({ grantor: grantor.did, subject: 'alice@example.com', agent: agent.did, purpose: 'two-week reconciliation', audiences: [AUD], tools, expiresIn: 30 * 86_400, maxDepth: 1 })
    longTxn = long.claims.txn
    for (const days of [1.1, 2, 4, 6.5]) {
      clock += days * DAY
      await a.clientFor(agent, { authentication: 'key' }).callCredential({ mandate: long.token, audience: AUD, tool: 'billing.get_invoice', arguments: { day: days } })
    }
    clock = Date.now()
    const short = await a.grant({ grantor: grantor.did, subject: 'bob@example.com', agent: agent.did, purpose: 'two-second run', audiences: [AUD], tools, expiresIn: 600, maxDepth: 1 })
    shortTxn = short.claims.txn
    clock += 400
    await a.clientFor(agent, { authentication: 'key' }).callCredential({ mandate: short.token, audience: AUD, tool: 'billing.get_invoice', arguments: { n: 1 } })
    clock += 1200
    await a.clientFor(agent, { authentication: 'key' }).callCredential({ mandate: short.token, audience: AUD, tool: 'billing.get_invoice', arguments: { n: 2 } })
    browser = await launch()
  })

  afterAll(async () => {
    await browser?.close()
    dashboard?.close()
    await server?.close()
  })

  it('groups a two-week task by day with dates; a two-second task shows milliseconds and offsets', async () => {
    const context = await browser.newContext({ viewport: { width: 1300, height: 900 } })
    const page = await context.newPage()
    await page.goto(`${server.url}${dashboard.createLoginPath({ did: admin.did, name: 'root-admin' }).path}`)
    await page.goto(`${server.url}/dashboard/tasks/${encodeURIComponent(longTxn)}`)
    const timeline = page.locator('table.timeline')
    await timeline.waitFor()
    const days = await timeline.locator('tr.day th').allTextContents()
    expect(days.length).toBeGreaterThanOrEqual(4)
    for (const d of days) expect(d).toMatch(/^\d{4}-\d{2}-\d{2} · \d+ records?$/)
    expect(await page.textContent('.span-summary')).toMatch(/over 1[34] d/)
    // every row keeps its absolute time (the day is in the group heading and the title) and its age
    const first = timeline.locator('tbody tr[data-seq] time').first()
    expect(await first.getAttribute('title')).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC$/)
    expect(await timeline.locator('tbody tr[data-seq] .rel').first().textContent()).toMatch(/1[34] d( \d+ h)? ago/)
    await page.screenshot({ path: join(RESULTS_DIR, 'dashboard-timeline-two-weeks.png'), fullPage: true })

    await page.goto(`${server.url}/dashboard/tasks/${encodeURIComponent(shortTxn)}`)
    await page.locator('table.timeline').waitFor()
    expect(await page.locator('table.timeline tr.day').count()).toBe(0)
    const stamps = await page.locator('table.timeline tbody tr[data-seq] time').allTextContents()
    for (const s of stamps) expect(s).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}$/)
    const offsets = await page.locator('table.timeline .offset').allTextContents()
    expect(offsets[0]).toBe(' +0 ms')
    expect(offsets[offsets.length - 1]).toMatch(/\+1\.\d s/)
    expect(await page.textContent('.span-summary')).toMatch(/over 1\.\d s/)
    await page.screenshot({ path: join(RESULTS_DIR, 'dashboard-timeline-two-seconds.png'), fullPage: true })
    await context.close()
  })
})
