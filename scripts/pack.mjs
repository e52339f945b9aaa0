#!/usr/bin/env node
// `node scripts/pack.mjs [DIR]` (or `npm run pack -- DIR`): build every publishable @mandate/*
// package and pack it as it would be published, into DIR (default ./mandate-packages). Install all
// the tarballs into your project with `npm install DIR/*.tgz`: npm resolves one tarball's
// @mandate/* dependencies only among the tarballs it is given (the packages are not on the registry yet).
import { spawnSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, rmSync, existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { PNPM, PUBLISHED } from './packages.mjs'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const dest = resolve(process.argv[2] ?? 'mandate-packages')
const env = { TURBO_TELEMETRY_DISABLED: '1', ...process.env }
const hasPnpm = spawnSync('pnpm', ['--version'], { stdio: 'ignore', env }).status === 0
const pnpm = (args, cwd = root) => {
  const [cmd, full] = hasPnpm ? ['pnpm', args] : ['npx', ['--yes', PNPM, ...args]]
  const r = spawnSync(cmd, full, { stdio: 'inherit', env, cwd })
  if (r.status !== 0) process.exit(r.status ?? 1)
}

if (!existsSync(join(root, 'node_modules'))) pnpm(['install', '--frozen-lockfile'])
console.log('building the packages…')
pnpm(['exec', 'turbo', 'run', 'build', ...PUBLISHED.map((p) => `--filter=./packages/${p}`), '--output-logs=errors-only'])
mkdirSync(dest, { recursive: true })
for (const f of readdirSync(dest)) if (/^mandate-.*\.tgz$/.test(f)) rmSync(join(dest, f))
for (const p of PUBLISHED) {
  const dir = join(root, 'packages', p)
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
  // a package packed without its build would install and then fail to import
  const main = manifest.exports?.['.']?.import ?? manifest.exports?.['.']?.default ?? manifest.main
  const entry = typeof main === 'string' ? main : typeof main?.default === 'string' ? main.default : undefined
  if (entry !== undefined && !existsSync(join(dir, entry))) {
    console.error(`✗ ${manifest.name}: ${entry} is missing after the build`)
    process.exit(1)
  }
  pnpm(['pack', '--pack-destination', dest], dir)
}
console.log(`\n${PUBLISHED.length} packages in ${dest}. In your project:\n  npm install ${join(dest, '*.tgz')}`)
