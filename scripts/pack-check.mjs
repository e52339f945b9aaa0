#!/usr/bin/env node
// Packs every publishable package the way it would be published (`pnpm pack`), installs the
// tarballs into an empty project OUTSIDE the workspace with plain `npm install`, and runs each
// package's README examples there: examples/*.mjs with plain node, examples/*.ts type-checked
// with tsc against the published .d.ts files and run through scripts/consumer/run_examples.ts; plus
// the `mandate` binary. This is how users get the packages, so it is part of the test run.
// Everything runs on the Node that runs this script (npm, pnpm and the `mandate` binary included:
// its directory comes first on PATH), so `.ci/run` checks the packages on each Node it tests.
import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { PNPM, PUBLISHED } from './packages.mjs'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const packages = PUBLISHED
const work = mkdtempSync(join(tmpdir(), 'mandate-pack-'))
const tgzDir = join(work, 'tgz')
const app = join(work, 'app')
mkdirSync(tgzDir)
mkdirSync(app)

const env = { ...process.env, PATH: [dirname(process.execPath), process.env.PATH].filter(Boolean).join(':') }
const nodeDir = dirname(dirname(process.execPath))
if (!env.npm_config_nodedir && existsSync(join(nodeDir, 'include', 'node', 'node.h'))) env.npm_config_nodedir = nodeDir

function run(cmd, args, cwd, extra = {}) {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', ...extra })
  if (r.status !== 0) {
    console.error(`✗ ${cmd} ${args.join(' ')} (in ${cwd}) exited ${r.status}\n${r.stdout ?? ''}\n${r.stderr ?? ''}`)
    process.exit(1)
  }
  return r.stdout
}

console.log(`pack-check on Node ${process.versions.node} (${process.execPath})`)
const pnpm = spawnSync('pnpm', ['--version'], { stdio: 'ignore', env }).status === 0 ? ['pnpm', []] : ['npx', ['--yes', PNPM]]
const deps = {}
for (const p of packages) {
  const dir = join(root, 'packages', p)
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
  run(pnpm[0], [...pnpm[1], 'pack', '--pack-destination', tgzDir], dir)
  const tgz = readdirSync(tgzDir).find((f) => f.startsWith(manifest.name.replace('@', '').replace('/', '-')) && f.endsWith('.tgz'))
  if (!tgz) throw new Error(`no tarball for ${manifest.name}`)
  deps[manifest.name] = `file:../tgz/${tgz}`
  for (const [peer, range] of Object.entries(manifest.peerDependencies ?? {})) deps[peer] ??= range
}
// the examples use zod for tool schemas, as LangChain users do; tsc and tsx check and run the .ts ones
deps.zod ??= '^4.1.0'
const rootManifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
const cliManifest = JSON.parse(readFileSync(join(root, 'packages', 'cli', 'package.json'), 'utf8'))
deps.typescript ??= rootManifest.devDependencies.typescript
deps['@types/node'] ??= rootManifest.devDependencies['@types/node']
deps.tsx ??= cliManifest.devDependencies.tsx
writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'mandate-pack-check', private: true, type: 'module', dependencies: deps }, null, 2))
console.log(`installing ${Object.keys(deps).join(', ')} into ${app}`)
run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], app)

let ran = 0
for (const p of packages) {
  const ex = join(root, 'packages', p, 'examples')
  if (!existsSync(ex)) continue
  for (const f of readdirSync(ex).filter((n) => n.endsWith('.mjs'))) {
    const target = join(app, `${p}-${f}`)
    cpSync(join(ex, f), target)
    const out = run(process.execPath, [target], app, { timeout: 120_000 })
    console.log(`✓ ${p}/examples/${f}${out.trim() ? `\n  ${out.trim().split('\n').slice(-3).join('\n  ')}` : ''}`)
    ran++
  }
}
// TypeScript examples: type-check against the installed packages, then run them
cpSync(join(root, 'scripts', 'consumer'), app, { recursive: true })
for (const p of packages) {
  const ex = join(root, 'packages', p, 'examples')
  if (!existsSync(ex)) continue
  for (const f of readdirSync(ex).filter((n) => n.endsWith('.ts'))) {
    mkdirSync(join(app, 'examples', p), { recursive: true })
    cpSync(join(ex, f), join(app, 'examples', p, f))
  }
}
// the README examples (between `<!-- example:start examples/FILE.ts -->` markers): run_examples.ts
// has dedicated checks for some; every other one is imported and its exported main() awaited
const readmeExamples = []
for (const p of packages) {
  const readme = join(root, 'packages', p, 'README.md')
  if (!existsSync(readme)) continue
  for (const m of readFileSync(readme, 'utf8').matchAll(/<!-- example:start examples\/([\w.-]+\.ts) -->/g)) {
    if (existsSync(join(root, 'packages', p, 'examples', m[1]))) readmeExamples.push(`${p}/${m[1]}`)
  }
}
writeFileSync(join(app, 'readme-examples.json'), JSON.stringify(readmeExamples))
run(process.execPath, [join(app, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], app)
console.log('✓ tsc: the TypeScript examples type-check against the published types')
const consumer = run(process.execPath, ['--import', 'tsx', 'run_examples.ts'], app, { timeout: 180_000 })
process.stdout.write(consumer)
ran += consumer.split('\n').filter((l) => l.startsWith('✓')).length + 1
const help = run(join(app, 'node_modules', '.bin', 'mandate'), ['--help'], app)
if (!/mandate/.test(help)) throw new Error('mandate --help printed nothing useful')
console.log('✓ mandate --help')
rmSync(work, { recursive: true, force: true })
console.log(`pack-check: ${ran + 1} passed, 0 failed`)
