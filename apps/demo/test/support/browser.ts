import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium, type Browser } from 'playwright-core'

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
export const RESULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test-results')

/** Browser tests run when Chromium is installed, and always under CI (where a missing browser is a failure). */
export const browserAvailable = existsSync(CHROMIUM) || process.env.CI === 'true' || process.env.CI === '1'
if (!browserAvailable) console.warn(`[skip] browser tests: ${CHROMIUM} not found (install with: apt-get install -y chromium) and CI is not set`)

export async function launch(): Promise<Browser> {
  await mkdir(RESULTS_DIR, { recursive: true })
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  })
}
