#!/usr/bin/env node
// Bundles the dashboard front end (src/dashboard/ui, typed TypeScript) with esbuild into
// dist/dashboard-ui: app.<hash>.js, app.<hash>.css and manifest.json naming them. Both the built
// package (dist/dashboard/assets/bundle.js) and the TypeScript sources (src/dashboard/assets/bundle.ts)
// read that one directory, so `pnpm build` and the vitest globalSetup (which calls buildDashboard())
// produce what every run path serves. Writes are atomic (temp file + rename): concurrent builds and
// a server reading the manifest never see a half-written file.
import { mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { build } from 'esbuild'

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), '..')
export const OUT_DIR = join(pkg, 'dist', 'dashboard-ui')
const ENTRY = join(pkg, 'src', 'dashboard', 'ui', 'main.ts')

/** Builds the bundle; returns the manifest ({ js, css } file names inside OUT_DIR). */
export async function buildDashboard({ minify = true } = {}) {
  const result = await build({
    entryPoints: [ENTRY],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022', 'chrome110', 'firefox115', 'safari16'],
    minify,
    sourcemap: false,
    legalComments: 'none',
    charset: 'utf8',
    write: false,
    outdir: OUT_DIR,
    entryNames: 'app.[hash]',
    logLevel: 'warning',
  })
  mkdirSync(OUT_DIR, { recursive: true })
  const manifest = {}
  for (const file of result.outputFiles) {
    const name = basename(file.path)
    const kind = name.endsWith('.css') ? 'css' : name.endsWith('.js') ? 'js' : undefined
    if (!kind) continue
    const text = file.text
    if (kind === 'js' && /\beval\s*\(|new Function\s*\(/.test(text)) throw new Error('the dashboard bundle must not use eval or new Function')
    atomicWrite(join(OUT_DIR, name), text)
    manifest[kind] = name
  }
  if (!manifest.js || !manifest.css) throw new Error('esbuild produced no app.js/app.css')
  atomicWrite(join(OUT_DIR, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`)
  // drop bundles of earlier builds (servers hold the bytes they serve in memory)
  for (const name of readdirSync(OUT_DIR)) {
    if (/^app\.[A-Z0-9]+\.(js|css)$/i.test(name) && name !== manifest.js && name !== manifest.css) rmSync(join(OUT_DIR, name), { force: true })
  }
  return manifest
}

function atomicWrite(path, text) {
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`
  writeFileSync(tmp, text)
  renameSync(tmp, path)
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const manifest = await buildDashboard()
  console.log(`dashboard bundle: ${join('dist', 'dashboard-ui', manifest.js)}, ${join('dist', 'dashboard-ui', manifest.css)}`)
}
