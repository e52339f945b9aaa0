/**
 * The dashboard front end as built by `scripts/build_dashboard.mjs` (esbuild, from src/dashboard/ui):
 * `dist/dashboard-ui/manifest.json` names `app.<hash>.js` and `app.<hash>.css`. This module sits three
 * levels below the package root both as source (src/dashboard/assets) and as build output
 * (dist/dashboard/assets), so one relative path finds the bundle from either.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/** One built asset: its content-hashed file name and its bytes. */
export interface DashboardAsset {
  readonly name: string
  readonly body: string
}

/** The built front end. */
export interface DashboardBundle {
  readonly js: DashboardAsset
  readonly css: DashboardAsset
}

const DIR = new URL('../../../dist/dashboard-ui/', import.meta.url)
const HASHED = /^app\.[A-Za-z0-9]{4,32}\.(js|css)$/

let cached: DashboardBundle | undefined

/**
 * Reads the bundle once per process (the bytes stay in memory, so a rebuild never tears a page
 * load). Returns undefined when it has not been built: the page routes then answer 503 with the
 * command that builds it, instead of serving a dashboard without its script.
 */
export function loadDashboardBundle(): DashboardBundle | undefined {
  if (cached) return cached
  try {
    const manifest = JSON.parse(readFileSync(fileURLToPath(new URL('manifest.json', DIR)), 'utf8')) as { js?: unknown; css?: unknown }
    const js = asset(manifest.js, 'js')
    const css = asset(manifest.css, 'css')
    cached = { js, css }
    return cached
  } catch {
    return undefined
  }
}

function asset(name: unknown, ext: 'js' | 'css'): DashboardAsset {
  if (typeof name !== 'string' || !HASHED.test(name) || !name.endsWith(`.${ext}`)) throw new Error('bad manifest entry')
  return { name, body: readFileSync(fileURLToPath(new URL(name, DIR)), 'utf8') }
}
