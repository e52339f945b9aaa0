/**
 * The demo story's interactive sign-in, with headless Chromium as the person: the story prints the
 * provider's authorization URL and waits at the host app's callback; the browser opens that URL and
 * fills the provider's login form; the ID token it brings back is what the host app exchanges for
 * the task mandate, and the rest of the story runs on it. A wrong password first changes nothing:
 * the story keeps waiting until the right one is given.
 */
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ALICE } from '../src/idp/accounts.js'
import { Narrator } from '../src/narrator.js'
import { runStory } from '../src/story.js'
import { browserAvailable, launch } from './support/browser.js'

describe.skipIf(!browserAvailable)('the demo story from a real browser login', () => {
  let browser: Browser
  beforeAll(async () => {
    browser = await launch()
  })
  afterAll(async () => {
    await browser?.close()
  })

  it('Alice signs in in Chromium at the printed URL; her ID token becomes the task mandate', async () => {
    let narration = ''
    let signedIn: Promise<void> | undefined
    // a failure in the browser fails the test at once (the story would otherwise wait at the callback)
    let failBrowser: (err: unknown) => void = () => undefined
    const browserFailed = new Promise<never>((_, reject) => {
      failBrowser = reject
    })
    const context = await browser.newContext()
    const story = runStory({
      narrator: new Narrator((s) => {
        narration += s
        const url = /(http:\/\/127\.0\.0\.1:\d+\/auth\?\S+)/.exec(s)?.[1]
        if (url && !signedIn) {
          signedIn = (async () => {
            const page = await context.newPage()
            await page.goto(url)
            await page.locator('#username').fill(ALICE.username)
            await page.locator('#password').fill('not-alices-password')
            await page.locator('#sign-in').click()
            await page.locator('#login-error').waitFor({ timeout: 10_000 })
            await page.locator('#username').fill(ALICE.username)
            await page.locator('#password').fill(ALICE.password)
            await page.locator('#sign-in').click()
            await page.locator('#callback-title').waitFor({ timeout: 10_000 })
            expect(await page.textContent('#callback-title')).toBe('Signed in')
          })()
          signedIn.catch(failBrowser)
        }
      }),
      interactive: false,
      login: 'interactive',
      stateDir: await mkdtemp(join(tmpdir(), 'mandate-idp-story-')),
      autoApproveDelayMs: 100,
    })
    await Promise.race([story, browserFailed])
    await signedIn
    await context.close()
    expect(signedIn).toBeDefined()
    expect(narration).toMatch(/Open this URL in your browser and sign in as alice/)
    // the password refused in the browser is never what the terminal shows as signed in
    const issuer = /✔ OpenID provider (http:\/\/127\.0\.0\.1:\d+) /.exec(narration)?.[1]
    expect(narration).toContain(`✔ signed in: Alice Example <alice@example.com> — issuer ${issuer}, sub ${ALICE.sub}`)
    expect(narration).toContain(`subject ${issuer}#${ALICE.sub}`)
    expect(narration).toMatch(/task \S+: alice@example\.com → orchestrator/)
    expect(narration).toMatch(new RegExp(`grant alice@example\\.com → orchestrator\\s+signed in at ${issuer?.replace(/\./g, '\\.')} as ${ALICE.sub}`))
    expect(narration).toContain('audit log verified')
    // no token reaches the terminal, not even the ID token the browser brought back
    expect(narration).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/)
  })
})
